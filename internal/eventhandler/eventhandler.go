// Package eventhandler is the adapter of EventBridge events: a snapshot
// workflow that failed, timed out or was aborted without marking its
// snapshot (a Lambda that kept crashing, a history or payload limit, an
// operator's StopExecution) is reconciled at once, instead of when the
// snapshot is next read.
package eventhandler

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// Reconciler is what the handler needs of the domain.
type Reconciler interface {
	Reconcile(ctx context.Context, in snapshot.WorkflowInput, status string) error
}

// executionStatusChange is the detail of a "Step Functions Execution
// Status Change" event.
type executionStatusChange struct {
	ExecutionARN    string `json:"executionArn"`
	StateMachineARN string `json:"stateMachineArn"`
	Name            string `json:"name"`
	Status          string `json:"status"`
	Input           string `json:"input"`
}

// New returns the function the events Lambda runs. Events of other state
// machines (the Distributed Map's child executions among them), other
// statuses, or with an input that is not a snapshot's are ignored; an
// error reconciling is returned, so that Lambda retries the event and, in
// the end, sends it to the function's failure queue.
func New(r Reconciler, stateMachineARN string, log *slog.Logger) func(context.Context, events.CloudWatchEvent) error {
	return func(ctx context.Context, ev events.CloudWatchEvent) error {
		var change executionStatusChange
		if err := json.Unmarshal(ev.Detail, &change); err != nil {
			log.WarnContext(ctx, "ignoring an event whose detail is not an execution status change", "id", ev.ID, "error", err)
			return nil
		}
		switch {
		case change.StateMachineARN != stateMachineARN:
			return nil
		case change.Status != "FAILED" && change.Status != "TIMED_OUT" && change.Status != "ABORTED":
			return nil
		}
		var in snapshot.WorkflowInput
		if err := json.Unmarshal([]byte(change.Input), &in); err != nil || !snapshot.ValidID(in.SnapshotID) || in.SnapshotID != change.Name || in.TenantID == "" || in.StackID == "" {
			log.WarnContext(ctx, "ignoring an execution that is not a snapshot's", "execution_arn", change.ExecutionARN)
			return nil
		}
		log.InfoContext(ctx, "snapshot workflow ended", "snapshot_id", in.SnapshotID, "stack_id", in.StackID, "tenant_id", in.TenantID, "status", change.Status)
		return r.Reconcile(ctx, in, change.Status)
	}
}
