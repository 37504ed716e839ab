// Package sfnworkflows runs snapshot workflows on AWS Step Functions (or the
// local service in internal/localaws, which speaks the same API).
package sfnworkflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// API is the part of the Step Functions client the workflows use.
type API interface {
	StartExecution(ctx context.Context, in *sfn.StartExecutionInput, optFns ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
	DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, optFns ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
}

// Workflows implements snapshot.Workflows with one state machine whose
// executions are named after the snapshot ids.
type Workflows struct {
	api             API
	stateMachineARN string
}

var _ snapshot.Workflows = (*Workflows)(nil)

// New returns the workflows of the state machine
// arn:aws:states:REGION:ACCOUNT:stateMachine:NAME.
func New(api API, stateMachineARN string) *Workflows {
	return &Workflows{api: api, stateMachineARN: stateMachineARN}
}

// Start starts the snapshot's execution. A second start of the same
// snapshot is not an error: Step Functions answers ExecutionAlreadyExists
// when the first one has ended or had another input, and the name being
// the snapshot id, that execution is this snapshot's workflow.
func (w *Workflows) Start(ctx context.Context, in snapshot.WorkflowInput) error {
	input, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("sfnworkflows: encode input of %s: %w", in.SnapshotID, err)
	}
	_, err = w.api.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(w.stateMachineARN),
		Name:            aws.String(in.SnapshotID),
		Input:           aws.String(string(input)),
	})
	var exists *types.ExecutionAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("sfnworkflows: start execution %s: %w", in.SnapshotID, err)
	}
	return nil
}

// State tells whether the snapshot's execution runs, has ended (with its
// status: SUCCEEDED, FAILED, TIMED_OUT or ABORTED) or never started.
func (w *Workflows) State(ctx context.Context, snapshotID string) (snapshot.ExecutionState, string, error) {
	out, err := w.api.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(w.executionARN(snapshotID))})
	var missing *types.ExecutionDoesNotExist
	if errors.As(err, &missing) {
		return snapshot.ExecutionMissing, "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("sfnworkflows: describe execution %s: %w", snapshotID, err)
	}
	switch out.Status {
	// PENDING_REDRIVE: someone redrove the execution and it is about to
	// run again.
	case types.ExecutionStatusRunning, types.ExecutionStatusPendingRedrive:
		return snapshot.ExecutionRunning, "", nil
	case types.ExecutionStatusSucceeded, types.ExecutionStatusFailed, types.ExecutionStatusTimedOut, types.ExecutionStatusAborted:
		return snapshot.ExecutionEnded, string(out.Status), nil
	}
	return "", "", fmt.Errorf("sfnworkflows: execution %s has unknown status %q", snapshotID, out.Status)
}

// executionARN is arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME.
func (w *Workflows) executionARN(name string) string {
	return strings.Replace(w.stateMachineARN, ":stateMachine:", ":execution:", 1) + ":" + name
}
