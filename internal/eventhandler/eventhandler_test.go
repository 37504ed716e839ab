package eventhandler

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

type recorder struct {
	got      []snapshot.WorkflowInput
	statuses []string
	err      error
}

func (r *recorder) Reconcile(_ context.Context, in snapshot.WorkflowInput, status string) error {
	r.got = append(r.got, in)
	r.statuses = append(r.statuses, status)
	return r.err
}

const (
	machine    = "arn:aws:states:us-east-1:123456789012:stateMachine:state-machine"
	snapshotID = "019ae0c4-6899-7b17-a905-ba6d5586ff85"
	input      = `{"snapshot_id":"` + snapshotID + `","tenant_id":"123456789012","stack_id":"11111111-2222-3333-4444-555555555555","stack_name":"web"}`
)

// sample is AWS's documented "Execution failed" event, with our input.
func sample(t *testing.T, edit func(detail map[string]any)) events.CloudWatchEvent {
	t.Helper()
	raw, err := os.ReadFile("../../testdata/events/sfn-execution-status-change.failed.docs.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.CloudWatchEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	var detail map[string]any
	if err := json.Unmarshal(ev.Detail, &detail); err != nil {
		t.Fatal(err)
	}
	detail["name"], detail["input"] = snapshotID, input
	if edit != nil {
		edit(detail)
	}
	ev.Detail, _ = json.Marshal(detail)
	return ev
}

func handler(r Reconciler) func(context.Context, events.CloudWatchEvent) error {
	return New(r, machine, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func TestReconcilesEndedSnapshotWorkflows(t *testing.T) {
	for _, status := range []string{"FAILED", "TIMED_OUT", "ABORTED"} {
		t.Run(status, func(t *testing.T) {
			r := &recorder{}
			if err := handler(r)(context.Background(), sample(t, func(d map[string]any) { d["status"] = status })); err != nil {
				t.Fatal(err)
			}
			want := snapshot.WorkflowInput{SnapshotID: snapshotID, TenantID: "123456789012", StackID: "11111111-2222-3333-4444-555555555555", StackName: "web"}
			if len(r.got) != 1 || r.got[0] != want || r.statuses[0] != status {
				t.Fatalf("reconciled %+v %v", r.got, r.statuses)
			}
		})
	}
}

func TestIgnores(t *testing.T) {
	tests := map[string]func(d map[string]any){
		"Succeeded":         func(d map[string]any) { d["status"] = "SUCCEEDED" },
		"Running":           func(d map[string]any) { d["status"] = "RUNNING" },
		"OtherStateMachine": func(d map[string]any) { d["stateMachineArn"] = machine + "/Resources" },
		"InputNotJSON":      func(d map[string]any) { d["input"] = "nope" },
		"InputNotASnapshot": func(d map[string]any) { d["input"] = `{"snapshot_id": "x"}` },
		"NameIsNotTheId":    func(d map[string]any) { d["name"] = "other" },
		"InputLeftOut":      func(d map[string]any) { delete(d, "input") },
	}
	for name, edit := range tests {
		t.Run(name, func(t *testing.T) {
			r := &recorder{}
			if err := handler(r)(context.Background(), sample(t, edit)); err != nil || len(r.got) != 0 {
				t.Fatalf("err %v, reconciled %+v", err, r.got)
			}
		})
	}
}

func TestReconcileErrorIsReturnedForARetry(t *testing.T) {
	r := &recorder{err: errors.New("dynamodb: throttled")}
	err := handler(r)(context.Background(), sample(t, nil))
	if err == nil || !strings.Contains(err.Error(), "throttled") {
		t.Fatalf("err = %v", err)
	}
}
