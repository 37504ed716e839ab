package localrun

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stacksnap/stacksnap/internal/simcloud"
)

// TestRestart runs a second runner on a data directory, stops it with one
// snapshot COMPLETE and one IN_PROGRESS, and starts it again: the records
// and stack ids are still there, and the snapshot whose workflow was lost
// with the old process is marked FAILED instead of staying IN_PROGRESS.
func TestRestart(t *testing.T) {
	ctx := context.Background()
	opts := Options{
		DataDir:          t.TempDir(),
		StacksDir:        "../../local/stacks",
		ArtefactDuration: 200 * time.Millisecond,
		WaitMs:           50,
		LockGrace:        time.Second,
		Limit:            32,
	}
	first, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	stack, err := first.Cloud.Stack(ctx, first.Account, "DynamoDB-Table")
	if err != nil {
		first.Stop()
		t.Fatal(err)
	}
	done := postAndWait(t, first.SnapshotsURL(stack), true)
	if err := first.Cloud.SetBehaviour(first.Account, stack.Name, "myDynamoDBTable", simcloud.Behaviour{Duration: time.Hour}); err != nil {
		t.Fatal(err)
	}
	lost := postAndWait(t, first.SnapshotsURL(stack), false)
	first.Stop()

	second, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Stop()
	if _, err := Start(ctx, opts); err == nil || !strings.Contains(err.Error(), "another stacksnap local runner is using") {
		t.Fatalf("a second runner on the same data dir: %v", err)
	}
	again, err := second.Cloud.Stack(ctx, second.Account, "DynamoDB-Table")
	if err != nil || again.ID != stack.ID {
		t.Fatalf("stack after restart %+v %v, want id %s", again, err, stack.ID)
	}
	if got := show(t, second.SnapshotsURL(stack)+"/"+done); got["status"] != "COMPLETE" || got["data"] == nil {
		t.Fatalf("completed snapshot after restart: %v", got)
	}
	time.Sleep(opts.LockGrace)
	got := show(t, second.SnapshotsURL(stack)+"/"+lost)
	if got["status"] != "FAILED" || got["status_reason"] != "Resource SNAPSHOT failed: the snapshot workflow never started or was lost" {
		t.Fatalf("lost snapshot after restart: %v %v", got["status"], got["status_reason"])
	}
	// The stack is free again.
	postAndWait(t, second.SnapshotsURL(stack), false)
}

// postAndWait snapshots a stack and returns the new id; with complete, it
// waits until the snapshot is COMPLETE.
func postAndWait(t testing.TB, url string, complete bool) string {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(`{"name": "restart"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var created map[string]any
	if err := json.NewDecoder(res.Body).Decode(&created); err != nil || res.StatusCode != 200 {
		t.Fatalf("POST %d %v %v", res.StatusCode, created, err)
	}
	id := created["id"].(string)
	for deadline := time.Now().Add(20 * time.Second); complete; time.Sleep(50 * time.Millisecond) {
		if show(t, url+"/"+id)["status"] == "COMPLETE" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshot %s did not complete", id)
		}
	}
	return id
}

func show(t testing.TB, url string) map[string]any {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var shown struct{ Snapshot map[string]any }
	if err := json.NewDecoder(res.Body).Decode(&shown); err != nil || res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, res.StatusCode, err)
	}
	return shown.Snapshot
}
