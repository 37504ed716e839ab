package sfnworkflows_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/stacksnap/stacksnap/internal/localaws"
	"github.com/stacksnap/stacksnap/internal/sfnworkflows"
	"github.com/stacksnap/stacksnap/internal/snapshot"
)

const (
	machineARN   = "arn:aws:states:us-east-1:000000000000:stateMachine:sfnworkflows-test"
	executionARN = "arn:aws:states:us-east-1:000000000000:execution:sfnworkflows-test:"
)

// testFunctions are the Lambda functions of testdata/workflow.asl.json. Work
// behaves by stack name; Recover records what the Catch gave it.
type testFunctions struct {
	mu        sync.Mutex
	attempts  map[string]int    // Work calls by snapshot id
	recovered []json.RawMessage // Recover payloads

	release     chan struct{} // closed to let the "slow" stack finish
	releaseOnce sync.Once
}

func (f *testFunctions) releaseSlow() { f.releaseOnce.Do(func() { close(f.release) }) }

func (f *testFunctions) work(ctx context.Context, payload json.RawMessage) (any, error) {
	var in snapshot.WorkflowInput
	if err := json.Unmarshal(payload, &in); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.attempts[in.SnapshotID]++
	attempt := f.attempts[in.SnapshotID]
	f.mu.Unlock()
	switch in.StackName {
	case "flaky":
		if attempt <= 2 {
			return nil, &snapshot.ThrottlingError{Message: "Rate exceeded"}
		}
	case "broken":
		return nil, &snapshot.ResourceSnapshotError{Message: "volume vol-1 is gone"}
	case "gone":
		return nil, &snapshot.StackChangedError{Message: "stack web was deleted"}
	case "slow":
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return map[string]any{"snapshotted": in.StackName, "attempt": attempt}, nil
}

func (f *testFunctions) recover(_ context.Context, payload json.RawMessage) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recovered = append(f.recovered, payload)
	return map[string]bool{"recovered": true}, nil
}

func startLocalWorkflows(t *testing.T) (*sfnworkflows.Workflows, *sfn.Client, *localaws.StepFunctions, *testFunctions) {
	t.Helper()
	fns := &testFunctions{attempts: map[string]int{}, release: make(chan struct{})}
	lambda := httptest.NewServer(localaws.LambdaInvokeHandler(map[string]func(context.Context, json.RawMessage) (any, error){
		"work":    fns.work,
		"recover": fns.recover,
	}))
	t.Cleanup(lambda.Close)
	t.Cleanup(fns.releaseSlow) // before lambda.Close, which waits for the slow call

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	server, err := localaws.StartStepFunctions(ctx, localaws.StepFunctionsOptions{
		StateMachines: []localaws.StateMachine{{
			ARN:            machineARN,
			DefinitionPath: "testdata/workflow.asl.json",
			Substitutions: map[string]string{
				"WorkFunctionArn":    "arn:aws:lambda:us-east-1:000000000000:function:work",
				"RecoverFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:recover",
			},
		}},
		LambdaEndpoint:   lambda.URL,
		RetryOverridesMs: map[string]int{"Work": 0},
		Stderr:           testLog{t},
	})
	if err != nil {
		// Never a skip: without node/node_modules this must fail loudly.
		t.Fatalf("start the local Step Functions service: %v", err)
	}
	t.Cleanup(server.Stop)
	client := localaws.SFNClient(server.Endpoint)
	return sfnworkflows.New(client, machineARN), client, server, fns
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Logf("%s", p)
	return len(p), nil
}

func input(id, stack string) snapshot.WorkflowInput {
	return snapshot.WorkflowInput{SnapshotID: id, TenantID: "tenant-1", StackID: "stack-" + id, StackName: stack}
}

// waitEnded polls State until the execution is no longer running.
func waitEnded(t *testing.T, wf *sfnworkflows.Workflows, id string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		state, detail, err := wf.State(context.Background(), id)
		if err != nil {
			t.Fatalf("State(%s): %v", id, err)
		}
		if state == snapshot.ExecutionEnded {
			return detail
		}
		if state != snapshot.ExecutionRunning || time.Now().After(deadline) {
			t.Fatalf("State(%s) = %s, want it to end", id, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func describe(t *testing.T, client *sfn.Client, id string) *sfn.DescribeExecutionOutput {
	t.Helper()
	out, err := client.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(executionARN + id)})
	if err != nil {
		t.Fatalf("DescribeExecution %s: %v", id, err)
	}
	return out
}

func TestLocalStepFunctions(t *testing.T) {
	wf, client, server, fns := startLocalWorkflows(t)
	ctx := context.Background()

	t.Run("never started", func(t *testing.T) {
		state, _, err := wf.State(ctx, "snap-none")
		if err != nil || state != snapshot.ExecutionMissing {
			t.Fatalf("State = %s, %v; want MISSING", state, err)
		}
	})

	t.Run("succeeds, and a second start is harmless", func(t *testing.T) {
		if err := wf.Start(ctx, input("snap-ok", "ok")); err != nil {
			t.Fatalf("Start: %v", err)
		}
		if got := waitEnded(t, wf, "snap-ok"); got != "SUCCEEDED" {
			t.Fatalf("ended %s, want SUCCEEDED", got)
		}
		// The execution has ended: Step Functions answers ExecutionAlreadyExists.
		if err := wf.Start(ctx, input("snap-ok", "ok")); err != nil {
			t.Errorf("second Start: %v", err)
		}
		out := describe(t, client, "snap-ok")
		var result struct {
			Work struct{ Snapshotted string } `json:"work"`
		}
		if err := json.Unmarshal([]byte(aws.ToString(out.Output)), &result); err != nil || result.Work.Snapshotted != "ok" {
			t.Errorf("output %s", aws.ToString(out.Output))
		}
	})

	t.Run("retries a ThrottlingError by its Go type name", func(t *testing.T) {
		if err := wf.Start(ctx, input("snap-flaky", "flaky")); err != nil {
			t.Fatalf("Start: %v", err)
		}
		if got := waitEnded(t, wf, "snap-flaky"); got != "SUCCEEDED" {
			t.Fatalf("ended %s, want SUCCEEDED", got)
		}
		events, err := server.Events(ctx, "snap-flaky")
		if err != nil {
			t.Fatal(err)
		}
		if transitions, retries := localaws.Transitions(events); transitions != 3 || retries != 2 {
			t.Errorf("transitions %d, retries %d; want 3, 2", transitions, retries)
		}
	})

	t.Run("catches a ResourceSnapshotError with a Lambda-shaped Cause", func(t *testing.T) {
		if err := wf.Start(ctx, input("snap-broken", "broken")); err != nil {
			t.Fatalf("Start: %v", err)
		}
		if got := waitEnded(t, wf, "snap-broken"); got != "FAILED" {
			t.Fatalf("ended %s, want FAILED", got)
		}
		fns.mu.Lock()
		recovered := fns.recovered
		fns.mu.Unlock()
		if len(recovered) != 1 {
			t.Fatalf("Recover ran %d times, want 1", len(recovered))
		}
		// Recover's InputPath is $.error: it gets the Catch output alone.
		var caught map[string]string
		if err := json.Unmarshal(recovered[0], &caught); err != nil || len(caught) != 2 {
			t.Fatalf("Recover got %s (%v), want {Error, Cause}", recovered[0], err)
		}
		if caught["Error"] != "ResourceSnapshotError" {
			t.Errorf("Error = %q, want the Go type name ResourceSnapshotError", caught["Error"])
		}
		// What a Go function's invoke error body is, and so what AWS puts in Cause.
		if want := `{"errorMessage":"volume vol-1 is gone","errorType":"ResourceSnapshotError"}`; caught["Cause"] != want {
			t.Errorf("Cause = %s, want %s", caught["Cause"], want)
		}
		out := describe(t, client, "snap-broken")
		if aws.ToString(out.Error) != "SnapshotFailed" || aws.ToString(out.Cause) != "a resource could not be snapshotted" {
			t.Errorf("execution error %q, cause %q", aws.ToString(out.Error), aws.ToString(out.Cause))
		}
	})

	t.Run("fails on an uncaught error", func(t *testing.T) {
		if err := wf.Start(ctx, input("snap-gone", "gone")); err != nil {
			t.Fatalf("Start: %v", err)
		}
		if got := waitEnded(t, wf, "snap-gone"); got != "FAILED" {
			t.Fatalf("ended %s, want FAILED", got)
		}
		out := describe(t, client, "snap-gone")
		want := `{"errorMessage":"stack web was deleted","errorType":"StackChangedError"}`
		if aws.ToString(out.Error) != "StackChangedError" || aws.ToString(out.Cause) != want {
			t.Errorf("execution error %q, cause %q; want StackChangedError, %s", aws.ToString(out.Error), aws.ToString(out.Cause), want)
		}
	})

	t.Run("a start while running is the same execution", func(t *testing.T) {
		if err := wf.Start(ctx, input("snap-slow", "slow")); err != nil {
			t.Fatalf("Start: %v", err)
		}
		if state, _, err := wf.State(ctx, "snap-slow"); err != nil || state != snapshot.ExecutionRunning {
			t.Fatalf("State = %s, %v; want RUNNING", state, err)
		}
		if err := wf.Start(ctx, input("snap-slow", "slow")); err != nil {
			t.Errorf("same Start again: %v", err)
		}
		// Another input under the same name is refused by the service, and
		// the adapter still takes it as started: the name is the snapshot id.
		_, err := client.StartExecution(ctx, &sfn.StartExecutionInput{
			StateMachineArn: aws.String(machineARN), Name: aws.String("snap-slow"), Input: aws.String(`{"other":true}`),
		})
		var exists *types.ExecutionAlreadyExists
		if !errors.As(err, &exists) {
			t.Errorf("StartExecution with another input: %v, want ExecutionAlreadyExists", err)
		}
		if err := wf.Start(ctx, input("snap-slow", "renamed")); err != nil {
			t.Errorf("Start with another input: %v", err)
		}
		fns.releaseSlow()
		if got := waitEnded(t, wf, "snap-slow"); got != "SUCCEEDED" {
			t.Fatalf("ended %s, want SUCCEEDED", got)
		}
		fns.mu.Lock()
		defer fns.mu.Unlock()
		if n := fns.attempts["snap-slow"]; n != 1 {
			t.Errorf("Work ran %d times for snap-slow, want 1", n)
		}
	})
}
