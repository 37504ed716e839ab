package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"
)

// Caller is the principal that signed a request.
type Caller struct {
	AccountID string
}

// StackRef is a stack as a request's URL names it.
type StackRef struct {
	TenantID  string
	StackName string
	StackID   string
}

func (r StackRef) key() StackKey { return StackKey{TenantID: r.TenantID, StackID: r.StackID} }

// Service answers the snapshot API: it checks the rules of the contract,
// keeps the records and starts the workflows.
type Service struct {
	Store     Store
	Stacks    Stacks
	Workflows Workflows
	// Limit is max_snapshots_per_stack: -1 no limit, 0 none allowed.
	Limit int
	Now   Clock
	NewID func() string
	// LockGrace is how long a lock may point at a snapshot whose record or
	// execution is missing before it is taken to be left by a crash. It
	// must outlast one API call.
	LockGrace time.Duration
	Log       *slog.Logger
}

// Create snapshots a stack: it takes the stack's lock, writes an
// IN_PROGRESS record and starts the workflow that makes the artefacts.
func (s *Service) Create(ctx context.Context, caller Caller, ref StackRef, name *string) (Snapshot, error) {
	if name != nil && utf8.RuneCountInString(*name) > MaxNameLength {
		return Snapshot{}, Errorf(CodeBadRequest, "Snapshot name must be no longer than %d characters.", MaxNameLength)
	}
	stack, err := s.stack(ctx, caller, ref)
	if err != nil {
		return Snapshot{}, err
	}
	if action, busy := busyAction(stack.Status); busy {
		return Snapshot{}, errActionInProgress(stack.Name, action)
	}
	if s.Limit == 0 {
		return Snapshot{}, errLimitExceeded(0)
	}

	now := s.Now().UTC().Truncate(time.Second)
	snap := Snapshot{
		Key:       Key{TenantID: ref.TenantID, StackID: stack.ID, SnapshotID: s.NewID()},
		StackName: stack.Name,
		StackARN:  stack.ARN,
		Name:      name,
		Action:    ActionCreate,
		Status:    StatusInProgress,
		CreatedAt: now,
	}
	rec := StackRecord{StackKey: ref.key(), StackName: stack.Name, StackARN: stack.ARN}
	if err := s.reserve(ctx, rec, Lock{SnapshotID: snap.SnapshotID, Action: LockSnapshot, Since: now}); err != nil {
		return Snapshot{}, err
	}
	// The id is new: a conflict can only be our own write, retried by the
	// SDK after a lost answer.
	if err := s.Store.CreateSnapshot(ctx, snap); err != nil && !errors.Is(err, ErrStoreConflict) {
		s.abandon(ctx, snap.Key, "Snapshot record could not be written")
		return Snapshot{}, fmt.Errorf("write snapshot record: %w", err)
	}
	in := WorkflowInput{SnapshotID: snap.SnapshotID, TenantID: snap.TenantID, StackID: snap.StackID, StackName: snap.StackName}
	if err := s.Workflows.Start(ctx, in); err != nil {
		s.abandon(ctx, snap.Key, "Snapshot workflow could not be started")
		return Snapshot{}, fmt.Errorf("start workflow: %w", err)
	}
	return snap, nil
}

// Lookup finds a live stack of the tenant by name, as Heat's stack lookup
// does for clients that know only the name.
func (s *Service) Lookup(ctx context.Context, caller Caller, tenantID, name string) (Stack, error) {
	if caller.AccountID != tenantID {
		return Stack{}, Errorf(CodeForbidden, "Access was denied to this resource.")
	}
	stack, err := s.Stacks.Stack(ctx, tenantID, name)
	// CloudFormation also finds a stack by its ARN: a URL must name it.
	if ErrorCode(err) == CodeStackNotFound || (err == nil && (deleted(stack.Status) || stack.Name != name)) {
		return Stack{}, errStackNotFound(name)
	}
	if err != nil {
		return Stack{}, fmt.Errorf("look up stack %s: %w", name, err)
	}
	return stack, nil
}

// ShowStack shows the stack a URL names.
func (s *Service) ShowStack(ctx context.Context, caller Caller, ref StackRef) (Stack, error) {
	return s.stack(ctx, caller, ref)
}

// Get shows one snapshot of a stack.
func (s *Service) Get(ctx context.Context, caller Caller, ref StackRef, snapshotID string) (Snapshot, error) {
	if _, err := s.stack(ctx, caller, ref); err != nil {
		return Snapshot{}, err
	}
	if !ValidID(snapshotID) {
		return Snapshot{}, errSnapshotNotFound(snapshotID)
	}
	snap, err := s.Store.Snapshot(ctx, Key{TenantID: ref.TenantID, StackID: ref.StackID, SnapshotID: snapshotID})
	if errors.Is(err, ErrStoreNotFound) {
		return Snapshot{}, s.notFound(ctx, ref, snapshotID)
	}
	if err != nil {
		return Snapshot{}, err
	}
	return s.heal(ctx, snap)
}

// List lists the snapshots of a stack, newest first.
func (s *Service) List(ctx context.Context, caller Caller, ref StackRef, opts ListOptions) ([]Snapshot, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if _, err := s.stack(ctx, caller, ref); err != nil {
		return nil, err
	}
	page, err := s.Store.ListSnapshots(ctx, ref.key(), opts)
	if err != nil {
		return nil, err
	}
	out := page.Snapshots[:0]
	for _, snap := range page.Snapshots {
		if snap, err = s.heal(ctx, snap); err != nil {
			return nil, err
		}
		// Healing can change a status the store filtered on.
		if opts.Status == "" || snap.Status == opts.Status {
			out = append(out, snap)
		}
	}
	return out, nil
}

func (o ListOptions) validate() error {
	if o.Limit < 0 {
		return Errorf(CodeBadRequest, "limit must be a positive integer")
	}
	if o.Marker != "" && !ValidID(o.Marker) {
		return Errorf(CodeBadRequest, "marker must be the id of a snapshot")
	}
	switch o.Status {
	case "", StatusInProgress, StatusComplete, StatusFailed:
		return nil
	}
	return Errorf(CodeBadRequest, "status must be one of IN_PROGRESS, COMPLETE, FAILED")
}

// stack checks that the caller may act for the tenant and that the URL
// names a live stack.
func (s *Service) stack(ctx context.Context, caller Caller, ref StackRef) (Stack, error) {
	stack, err := s.Lookup(ctx, caller, ref.TenantID, ref.StackName)
	if err != nil {
		return Stack{}, err
	}
	if stack.ID != ref.StackID {
		return Stack{}, errStackNotFound(ref.StackName)
	}
	return stack, nil
}

// notFound tells a snapshot that does not exist (or is another tenant's)
// from one of another stack of the same tenant.
func (s *Service) notFound(ctx context.Context, ref StackRef, snapshotID string) error {
	key, err := s.Store.FindSnapshot(ctx, snapshotID)
	if errors.Is(err, ErrStoreNotFound) || (err == nil && key.TenantID != ref.TenantID) {
		return errSnapshotNotFound(snapshotID)
	}
	if err != nil {
		return err
	}
	if key.StackID == ref.StackID {
		// Written after our read: it exists now.
		return Errorf(CodeConflict, "snapshot %s appeared while being read", snapshotID)
	}
	return errSnapshotOfOtherStack(snapshotID, ref.StackName)
}

// reserve takes the stack's lock and a place under the limit. When the
// write's condition fails it reads why; a lock left by a crash is healed
// and the reservation tried again.
func (s *Service) reserve(ctx context.Context, rec StackRecord, lock Lock) error {
	const attempts = 3
	for range attempts {
		err := s.Store.Reserve(ctx, rec, lock, s.Limit)
		if !errors.Is(err, ErrStoreConflict) {
			return err
		}
		cur, err := s.Store.StackRecord(ctx, rec.StackKey)
		if errors.Is(err, ErrStoreNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if cur.Lock != nil && cur.Lock.SnapshotID == lock.SnapshotID {
			return nil // our own write, retried by the SDK after a lost answer
		}
		if cur.Lock != nil {
			healed, err := s.healLock(ctx, cur)
			if err != nil {
				return err
			}
			if !healed {
				return errActionInProgress(rec.StackName, cur.Lock.Action)
			}
			continue
		}
		if s.Limit >= 0 && cur.SnapshotCount >= s.Limit {
			return errLimitExceeded(s.Limit)
		}
		// The record changed between the write and the read: try again.
	}
	return fmt.Errorf("stack %s: reservation kept conflicting", rec.StackID)
}

// healLock releases a snapshot lock that no running work holds: its record
// was never written, its snapshot has ended, or its workflow is gone. It
// reports whether the lock was released.
func (s *Service) healLock(ctx context.Context, rec StackRecord) (bool, error) {
	lock := rec.Lock
	if lock.Action != LockSnapshot {
		return false, nil
	}
	key := Key{TenantID: rec.TenantID, StackID: rec.StackID, SnapshotID: lock.SnapshotID}
	stale := s.Now().Sub(lock.Since) > s.LockGrace
	snap, err := s.Store.Snapshot(ctx, key)
	switch {
	case errors.Is(err, ErrStoreNotFound):
		if !stale {
			return false, nil
		}
		s.logHeal(ctx, key, "lock without a snapshot record")
		return s.release(ctx, key, true)
	case err != nil:
		return false, err
	case snap.Status != StatusInProgress || snap.Action != ActionCreate:
		s.logHeal(ctx, key, "lock of a finished snapshot")
		return s.release(ctx, key, false)
	}
	if _, err := s.heal(ctx, snap); err != nil {
		return false, err
	}
	cur, err := s.Store.Snapshot(ctx, key)
	if err != nil {
		return false, err
	}
	if cur.Status == StatusInProgress {
		return false, nil
	}
	return s.release(ctx, key, false)
}

// heal fails an IN_PROGRESS snapshot whose workflow is no longer running
// (it never started, or ended without writing a result) and frees its
// stack. Snapshots younger than LockGrace are left alone: their workflow
// may not have started yet.
func (s *Service) heal(ctx context.Context, snap Snapshot) (Snapshot, error) {
	if snap.Status != StatusInProgress || snap.Action != ActionCreate || s.Now().Sub(snap.CreatedAt) <= s.LockGrace {
		return snap, nil
	}
	return s.reconcile(ctx, snap)
}

// Reconcile settles a snapshot whose workflow EventBridge reported ended
// with status (FAILED, TIMED_OUT or ABORTED): if the workflow left it
// IN_PROGRESS, it is marked FAILED and its stack freed at once. The event
// is final; Step Functions' own answer could still say RUNNING for a
// moment, so it is not asked.
func (s *Service) Reconcile(ctx context.Context, in WorkflowInput, status string) error {
	snap, err := s.Store.Snapshot(ctx, in.Key())
	if errors.Is(err, ErrStoreNotFound) {
		return nil // not one of ours, or already gone
	}
	if err != nil {
		return err
	}
	if snap.Status != StatusInProgress || snap.Action != ActionCreate {
		// Finished; a lock it may still hold is released all the same.
		_, err := s.release(ctx, snap.Key, false)
		return err
	}
	_, err = s.failLost(ctx, snap, ExecutionEnded, status)
	return err
}

// reconcile asks the workflow engine about an IN_PROGRESS snapshot and
// fails it when its execution is gone or over.
func (s *Service) reconcile(ctx context.Context, snap Snapshot) (Snapshot, error) {
	state, detail, err := s.Workflows.State(ctx, snap.SnapshotID)
	if err != nil {
		return Snapshot{}, err
	}
	if state == ExecutionRunning {
		return snap, nil
	}
	return s.failLost(ctx, snap, state, detail)
}

// failLost marks FAILED a snapshot whose workflow is over (or never was)
// and frees its stack. The reason names the resources whose artefact
// failed, when the record says so.
func (s *Service) failLost(ctx context.Context, snap Snapshot, state ExecutionState, detail string) (Snapshot, error) {
	reason := ReasonFailedPrefix + "the snapshot workflow never started or was lost"
	switch {
	case failedResources(snap) != "":
		reason = ReasonFailedPrefix + failedResources(snap)
	case state == ExecutionEnded:
		reason = fmt.Sprintf("%sthe snapshot workflow ended (%s) without recording a result", ReasonFailedPrefix, detail)
	}
	s.logHeal(ctx, snap.Key, reason)
	if err := s.Store.Fail(ctx, snap.Key, reason); err != nil && !errors.Is(err, ErrStoreConflict) {
		return Snapshot{}, err
	}
	if _, err := s.release(ctx, snap.Key, false); err != nil {
		return Snapshot{}, err
	}
	return s.Store.Snapshot(ctx, snap.Key)
}

// abandon undoes a Create that failed half way: the record, if it was
// written, is marked FAILED (and keeps its place under the limit); the
// place is given back when it was not; the lock is released either way.
func (s *Service) abandon(ctx context.Context, key Key, why string) {
	// The caller's context may be the one that failed; clean up anyway.
	ctx = context.WithoutCancel(ctx)
	uncount := false
	if err := s.Store.Fail(ctx, key, ReasonFailedPrefix+why); errors.Is(err, ErrStoreConflict) {
		_, getErr := s.Store.Snapshot(ctx, key)
		uncount = errors.Is(getErr, ErrStoreNotFound)
	} else if err != nil {
		s.Log.ErrorContext(ctx, "abandon: fail snapshot", "snapshot_id", key.SnapshotID, "error", err)
	}
	if _, err := s.release(ctx, key, uncount); err != nil {
		// The lock heals after LockGrace.
		s.Log.ErrorContext(ctx, "abandon: release lock", "snapshot_id", key.SnapshotID, "error", err)
	}
}

// release drops the lock that key's snapshot holds. A lock already gone
// counts as released.
func (s *Service) release(ctx context.Context, key Key, uncount bool) (bool, error) {
	err := s.Store.Release(ctx, StackKey{TenantID: key.TenantID, StackID: key.StackID}, key.SnapshotID, uncount)
	if err != nil && !errors.Is(err, ErrStoreConflict) {
		return false, err
	}
	return true, nil
}

func (s *Service) logHeal(ctx context.Context, key Key, why string) {
	s.Log.WarnContext(ctx, "healing stack lock", "tenant_id", key.TenantID, "stack_id", key.StackID, "snapshot_id", key.SnapshotID, "why", why)
}
