// Package snapshot is the domain of stacksnap: snapshots of CloudFormation
// stacks, their statuses and rules, the Heat formats, and the interfaces
// (ports) the domain needs from the outside world. It depends on nothing AWS.
package snapshot

import (
	"time"

	"github.com/google/uuid"
)

// Status of a snapshot, as Heat names it.
type Status string

const (
	StatusInProgress Status = "IN_PROGRESS"
	StatusComplete   Status = "COMPLETE"
	StatusFailed     Status = "FAILED"
)

// Action of a snapshot, as Heat names it.
type Action string

const (
	ActionCreate Action = "CREATE"
	ActionDelete Action = "DELETE"
)

// Reasons written on a snapshot record.
const (
	ReasonComplete       = "Stack SNAPSHOT completed successfully"
	ReasonFailedPrefix   = "Resource SNAPSHOT failed: "
	ReasonDeleteStarted  = "Snapshot delete started"
	MaxNameLength        = 255
	DefaultSnapshotLimit = 32
)

// Key identifies one snapshot record.
type Key struct {
	TenantID   string
	StackID    string
	SnapshotID string
}

// StackKey identifies one stack of one tenant.
type StackKey struct {
	TenantID string
	StackID  string
}

// Snapshot is one snapshot of a stack, with the workflow's bookkeeping.
type Snapshot struct {
	Key
	StackName    string
	StackARN     string
	Name         *string
	Action       Action
	Status       Status
	StatusReason *string
	CreatedAt    time.Time
	// Resources is the plan of the workflow: every resource of the stack
	// and how far its artefact has come. Artefact ids are written here as
	// soon as they exist, so that nothing can be orphaned.
	Resources map[string]ResourceProgress
	// Data is the Heat dump of the stack, set when the snapshot completes.
	Data *StackData
}

// ResourceState is how far one resource's artefact has come.
type ResourceState string

const (
	ResourcePending    ResourceState = "PENDING"     // to be snapshotted
	ResourceInProgress ResourceState = "IN_PROGRESS" // artefact started
	ResourceComplete   ResourceState = "COMPLETE"    // artefact ready
	ResourceFailed     ResourceState = "FAILED"      // artefact failed
	ResourceNoSnapshot ResourceState = "NO_SNAPSHOT" // type has no artefact
)

// ResourceProgress is one resource of a snapshot's plan.
type ResourceProgress struct {
	LogicalID  string        `json:"logical_id"`
	PhysicalID string        `json:"physical_id"`
	Type       string        `json:"type"`
	State      ResourceState `json:"state"`
	Data       ResourceData  `json:"resource_data,omitempty"`
	Reason     string        `json:"reason,omitempty"`
}

// ResourceData holds the ids of a resource's artefacts (EBS snapshot id,
// AMI id and its snapshot ids, DB snapshot identifier, backup ARN, ...).
// Values are strings or lists of strings.
type ResourceData map[string]any

// StackRecord is what the store keeps per stack: how many snapshots it has
// and which action of ours, if any, holds it.
type StackRecord struct {
	StackKey
	StackName     string
	StackARN      string
	SnapshotCount int
	Lock          *Lock
}

// Lock says that an action of ours runs on a stack. One at a time.
type Lock struct {
	SnapshotID string
	Action     string // SNAPSHOT, RESTORE
	Since      time.Time
}

// Lock actions, as they appear in ActionInProgress messages.
const (
	LockSnapshot = "SNAPSHOT"
	LockRestore  = "RESTORE"
)

// NewID makes a snapshot id: a UUID, version 7, so that ids sort in the
// order snapshots were made (the store lists newest first by id).
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// ValidID reports whether id can be a snapshot id: a UUID in its
// canonical form. Anything else is not looked up.
func ValidID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && u.String() == id
}
