package snapshot

import (
	"context"
	"time"
)

// Stacks looks up CloudFormation stacks of a tenant account.
type Stacks interface {
	// Stack finds a live stack by name; a stack that does not exist is
	// an *Error with CodeStackNotFound.
	Stack(ctx context.Context, tenantID, name string) (Stack, error)
	// Resources lists every resource of the stack, nested stacks included.
	Resources(ctx context.Context, tenantID string, stack Stack) ([]Resource, error)
	// Definition reads the stack's template, parameters and tags.
	Definition(ctx context.Context, tenantID string, stack Stack) (Definition, error)
}

// ArtefactRequest names the resource whose artefact is made, and the
// snapshot it belongs to (for tags and for finding a retried start's work).
type ArtefactRequest struct {
	Key
	StackName string
	Resource  Resource
}

// Progress is what a check of an artefact found.
type Progress struct {
	Done    bool
	Failure string // set when the artefact ended in error
	// Data, when set, replaces the resource's artefact ids: some are known
	// only once the artefact is ready (the EBS snapshots of an AMI).
	Data ResourceData
}

// Snapshotter makes, checks and deletes the native artefact of one kind of
// resource. Start must be idempotent: a retried start finds what the first
// one made. Throttling is a *ThrottlingError.
type Snapshotter interface {
	Start(ctx context.Context, req ArtefactRequest) (ResourceData, error)
	Check(ctx context.Context, req ArtefactRequest, data ResourceData) (Progress, error)
	Delete(ctx context.Context, tenantID string, data ResourceData) error
}

// Snapshotters maps a CloudFormation resource type to its snapshotter.
type Snapshotters map[string]Snapshotter

// Store keeps stack and snapshot records. Reads of a missing record return
// ErrStoreNotFound; writes whose condition fails return ErrStoreConflict.
type Store interface {
	// Reserve takes the stack's lock for a new snapshot and counts it, in
	// one atomic write: it fails with ErrStoreConflict when the stack is
	// locked or already has limit snapshots (limit < 0: no limit).
	Reserve(ctx context.Context, rec StackRecord, lock Lock, limit int) error
	// StackRecord reads a stack record, consistently.
	StackRecord(ctx context.Context, key StackKey) (StackRecord, error)
	// Release drops the stack's lock if snapshotID still holds it; with
	// uncount it also gives back the place Reserve counted.
	Release(ctx context.Context, key StackKey, snapshotID string, uncount bool) error

	// CreateSnapshot writes a new snapshot record; it never overwrites.
	CreateSnapshot(ctx context.Context, s Snapshot) error
	// Snapshot reads one snapshot record, consistently, with its data.
	Snapshot(ctx context.Context, key Key) (Snapshot, error)
	// SnapshotResource reads a snapshot record, consistently, without its
	// data and with only the named resource of its plan (none if absent):
	// the read of every check of an artefact.
	SnapshotResource(ctx context.Context, key Key, logicalID string) (Snapshot, error)
	// FindSnapshot finds a snapshot by id alone (any tenant, any stack).
	FindSnapshot(ctx context.Context, snapshotID string) (Key, error)
	// ListSnapshots lists a stack's snapshots, newest first, with their data.
	ListSnapshots(ctx context.Context, key StackKey, opts ListOptions) (SnapshotPage, error)

	// SetPlan writes the workflow's plan on an IN_PROGRESS snapshot.
	SetPlan(ctx context.Context, key Key, resources map[string]ResourceProgress) error
	// SetResource updates one resource of the plan of a CREATE snapshot that is IN_PROGRESS or FAILED.
	SetResource(ctx context.Context, key Key, progress ResourceProgress) error
	// Complete moves an IN_PROGRESS snapshot to COMPLETE with its data.
	Complete(ctx context.Context, key Key, data StackData, reason string) error
	// Fail moves an IN_PROGRESS snapshot to FAILED with a reason.
	Fail(ctx context.Context, key Key, reason string) error
}

// ListOptions pages and filters a listing.
type ListOptions struct {
	Limit  int    // 0: all
	Marker string // snapshot id after which to start
	Status Status // "": any
}

// SnapshotPage is one page of a listing.
type SnapshotPage struct {
	Snapshots []Snapshot
}

// WorkflowInput is what a snapshot workflow starts with: ids only.
type WorkflowInput struct {
	SnapshotID string `json:"snapshot_id"`
	TenantID   string `json:"tenant_id"`
	StackID    string `json:"stack_id"`
	StackName  string `json:"stack_name"`
}

// Key returns the snapshot key of the input.
func (in WorkflowInput) Key() Key {
	return Key{TenantID: in.TenantID, StackID: in.StackID, SnapshotID: in.SnapshotID}
}

// ExecutionState is what the workflow engine knows of a snapshot's execution.
type ExecutionState string

const (
	ExecutionRunning ExecutionState = "RUNNING"
	ExecutionEnded   ExecutionState = "ENDED"   // succeeded, failed, timed out or aborted
	ExecutionMissing ExecutionState = "MISSING" // never started
)

// Workflows starts snapshot workflows and tells whether one still runs.
// The execution is named after the snapshot id, so a second start of the
// same snapshot is harmless.
type Workflows interface {
	Start(ctx context.Context, in WorkflowInput) error
	State(ctx context.Context, snapshotID string) (ExecutionState, string, error)
}

// Clock tells the time; tests fix it.
type Clock func() time.Time
