package snapshot

// Errors returned by the workflow tasks. Their Go type names are what
// Lambda reports as errorType, so the state machine's Retry and Catch match
// on them: keep the names in step with statemachine/snapshot.asl.json.

// ThrottlingError means AWS asked us to slow down, or too many operations of
// a kind are in progress. The state machine retries it with backoff.
type ThrottlingError struct{ Message string }

func (e *ThrottlingError) Error() string { return e.Message }

// ResourceSnapshotError means one resource's artefact could not be made. It
// is permanent: the state machine marks the snapshot FAILED with its message.
type ResourceSnapshotError struct{ Message string }

func (e *ResourceSnapshotError) Error() string { return e.Message }

// StackChangedError means the stack went away or was replaced while it was
// being snapshotted. It is permanent.
type StackChangedError struct{ Message string }

func (e *StackChangedError) Error() string { return e.Message }

// BusyError means the resource cannot be snapshotted right now but will
// be later: an RDS instance in its backup window, too many snapshots of
// the account in progress, a table being updated. It is not an error of
// the snapshot: the workflow tries the start again at its next check,
// with the growing wait, until BusyLimit has passed.
type BusyError struct{ Message string }

func (e *BusyError) Error() string { return e.Message }
