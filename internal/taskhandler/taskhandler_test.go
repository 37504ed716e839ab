package taskhandler

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// noStore fails every read: enough to show which task ran and how its
// error comes back.
type noStore struct{ snapshot.Store }

func (noStore) Snapshot(context.Context, snapshot.Key) (snapshot.Snapshot, error) {
	return snapshot.Snapshot{}, snapshot.ErrStoreNotFound
}

func (noStore) SnapshotResource(context.Context, snapshot.Key, string) (snapshot.Snapshot, error) {
	return snapshot.Snapshot{}, snapshot.ErrStoreNotFound
}

func (noStore) Fail(context.Context, snapshot.Key, string) error { return snapshot.ErrStoreConflict }

func (noStore) Release(context.Context, snapshot.StackKey, string, bool) error {
	return snapshot.ErrStoreConflict
}

func handler() func(context.Context, Event) (any, error) {
	return New(&snapshot.Tasks{Store: noStore{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

func event(t *testing.T, raw string) Event {
	t.Helper()
	var ev Event
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestDispatch(t *testing.T) {
	ids := `{"snapshot_id": "s", "tenant_id": "123456789012", "stack_id": "i", "stack_name": "n"}`
	tests := []struct {
		name, event, err string
	}{
		{"Plan", `{"task": "Plan", "input": ` + ids + `}`, "read snapshot: record not found"},
		{"StartArtefact", `{"task": "StartArtefact", "input": {"snapshot_id": "s", "logical_id": "Data"}}`, "read snapshot: record not found"},
		{"CheckArtefact", `{"task": "CheckArtefact", "input": {"snapshot_id": "s", "logical_id": "Data", "wait_seconds": 5}}`, "read snapshot: record not found"},
		{"Finalize", `{"task": "Finalize", "input": ` + ids + `}`, "read snapshot: record not found"},
		{"ErrUnknownTask", `{"task": "Explode", "input": {}}`, `unknown task "Explode"`},
		{"ErrBadInput", `{"task": "Plan", "input": [1, 2]}`, "decode task input: json: cannot unmarshal array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := handler()(context.Background(), event(t, tt.event))
			if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
}

func TestMarkFailedReturnsItsResult(t *testing.T) {
	out, err := handler()(context.Background(), event(t, `{"task": "MarkFailed", "input": {"snapshot_id": "s", "tenant_id": "123456789012", "stack_id": "i",
		"error": {"Error": "ResourceSnapshotError", "Cause": "{\"errorMessage\": \"Data: boom\"}"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if res, ok := out.(snapshot.Result); !ok || res.Status != snapshot.StatusFailed || res.SnapshotID != "s" {
		t.Fatalf("out = %#v", out)
	}
}

// Typed errors reach Lambda unwrapped: their type names are what the
// state machine retries and catches on.
func TestErrorsAreNotWrapped(t *testing.T) {
	throttled := &snapshot.ThrottlingError{Message: "Rate exceeded"}
	h := func(ctx context.Context, in snapshot.WorkflowInput) (snapshot.PlanOutput, error) {
		return snapshot.PlanOutput{}, throttled
	}
	_, err := call(context.Background(), json.RawMessage(`{}`), h)
	if err != throttled {
		t.Fatalf("err = %#v, want the task's own *ThrottlingError", err)
	}
}

func TestWrappedTypedErrorsAreUnwrapped(t *testing.T) {
	throttled := &snapshot.ThrottlingError{Message: "Rate exceeded"}
	h := func(ctx context.Context, in snapshot.WorkflowInput) (snapshot.PlanOutput, error) {
		return snapshot.PlanOutput{}, fmt.Errorf("look up stack: %w", throttled)
	}
	if _, err := call(context.Background(), json.RawMessage(`{}`), h); err != throttled {
		t.Fatalf("err = %#v, want the *ThrottlingError inside", err)
	}
}
