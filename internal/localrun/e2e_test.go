package localrun

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stacksnap/stacksnap/internal/simcloud"
	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// These tests drive the local runner over HTTP as a client would: the real
// API, store (dynalite), state machine (aws-local-stepfunctions) and task
// code, against the simulated cloud loaded with local/stacks.

var runner *Runner

func TestMain(m *testing.M) {
	ctx := context.Background()
	flag.Parse()
	logs := io.Discard // the tools' and workflows' logs, with -v
	if testing.Verbose() {
		logs = os.Stderr
	}
	var err error
	runner, err = Start(ctx, Options{
		StacksDir:        "../../local/stacks",
		Limit:            4,
		ArtefactDuration: 300 * time.Millisecond,
		WaitMs:           50,
		// No real backoff in tests: retries happen at once.
		RetryOverridesMs: map[string]int{"Plan": 0, "StartArtefact": 0, "CheckArtefact": 0, "RecordResourceFailure": 0, "Finalize": 0, "MarkFailed": 0},
		Log:              logs,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "local runner did not start (run `make test`, which installs the Node tools):", err)
		os.Exit(1)
	}
	code := m.Run()
	runner.Stop()
	os.Exit(code)
}

type wireSnapshot struct {
	ID           string              `json:"id"`
	Name         *string             `json:"name"`
	Action       string              `json:"action"`
	Status       string              `json:"status"`
	StatusReason *string             `json:"status_reason"`
	Data         *snapshot.StackData `json:"data"`
	CreationTime string              `json:"creation_time"`
}

type heatError struct {
	Code  int `json:"code"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

func call(t *testing.T, method, url, body string, headers ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if res.Header.Get("X-Openstack-Request-Id") == "" && strings.Contains(url, "/v1/") {
		t.Fatalf("%s %s: no X-Openstack-Request-Id", method, url)
	}
	return res.StatusCode, out
}

func create(t *testing.T, s snapshot.Stack, name string) wireSnapshot {
	t.Helper()
	status, body := call(t, "POST", runner.SnapshotsURL(s), fmt.Sprintf(`{"name": %q}`, name))
	if status != 200 {
		t.Fatalf("POST: %d %s", status, body)
	}
	var snap wireSnapshot
	if err := json.Unmarshal(body, &snap); err != nil {
		t.Fatal(err)
	}
	return snap
}

// waitDone polls a snapshot until it leaves IN_PROGRESS.
func waitDone(t *testing.T, s snapshot.Stack, id string) wireSnapshot {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, body := call(t, "GET", runner.SnapshotsURL(s)+"/"+id, "")
		if status != 200 {
			t.Fatalf("GET: %d %s", status, body)
		}
		var shown struct{ Snapshot wireSnapshot }
		if err := json.Unmarshal(body, &shown); err != nil {
			t.Fatal(err)
		}
		if shown.Snapshot.Status != "IN_PROGRESS" {
			return shown.Snapshot
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshot %s still IN_PROGRESS", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func expectError(t *testing.T, status int, body []byte, wantStatus int, wantType, wantMessage string) {
	t.Helper()
	var he heatError
	if err := json.Unmarshal(body, &he); err != nil {
		t.Fatalf("%d %s: %v", status, body, err)
	}
	if status != wantStatus || he.Code != wantStatus || he.Error.Type != wantType || (wantMessage != "" && he.Error.Message != wantMessage) {
		t.Fatalf("got %d %s, want %d %s %q", status, body, wantStatus, wantType, wantMessage)
	}
}

var creationTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

// newStack adds a stack of the test's own, named after the test and tag
// and unique to this run (so -count=2 works), so that tests do not share
// places under the limit or locks.
func newStack(t *testing.T, tag, templateBody string) snapshot.Stack {
	t.Helper()
	name := "t-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")) + tag + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	name = regexp.MustCompile(`[^a-z0-9-]`).ReplaceAllString(name, "-")
	s, err := runner.Cloud.AddStack(runner.Account, name, []byte(templateBody))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEveryFixtureStackSnapshotsToComplete(t *testing.T) {
	for _, s := range runner.Stacks {
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			created := create(t, s, "first")
			if created.Action != "CREATE" || created.Status != "IN_PROGRESS" || created.StatusReason != nil || created.Data != nil || *created.Name != "first" || !creationTime.MatchString(created.CreationTime) {
				t.Fatalf("created %+v", created)
			}
			done := waitDone(t, s, created.ID)
			if done.Status != "COMPLETE" || *done.StatusReason != "Stack SNAPSHOT completed successfully" {
				t.Fatalf("done %s %v", done.Status, done.StatusReason)
			}
			d := done.Data
			if d.Name != s.Name || d.ID != s.ID || d.Action != "SNAPSHOT" || d.ProjectID != runner.Account || d.Template["Resources"] == nil {
				t.Fatalf("data %+v", d)
			}
			resources, _ := runner.Cloud.Resources(context.Background(), runner.Account, s)
			if len(d.Resources) != len(resources) {
				t.Fatalf("data has %d resources, the stack %d", len(d.Resources), len(resources))
			}
			for _, r := range resources {
				got := d.Resources[r.LogicalID]
				if got.ResourceID != r.PhysicalID || got.Type != r.Type || got.Status != "COMPLETE" || got.ResourceData == nil {
					t.Fatalf("%s: %+v", r.LogicalID, got)
				}
				if wantArtefact := artefactKey[r.Type]; wantArtefact != "" && got.ResourceData[wantArtefact] == nil {
					t.Fatalf("%s: resource_data %v lacks %s", r.LogicalID, got.ResourceData, wantArtefact)
				}
			}
		})
	}
}

var artefactKey = map[string]string{
	"AWS::EC2::Volume":     "snapshot_id",
	"AWS::EC2::Instance":   "image_id",
	"AWS::RDS::DBInstance": "db_snapshot_identifier",
	"AWS::RDS::DBCluster":  "db_cluster_snapshot_identifier",
	"AWS::DynamoDB::Table": "backup_arn",
}

const twoVolumes = `
Resources:
  Data:
    Type: AWS::EC2::Volume
    Properties: {Size: 10, AvailabilityZone: !Select [0, !GetAZs ""]}
  Logs:
    Type: AWS::EC2::Volume
    Properties: {Size: 10, AvailabilityZone: !Select [0, !GetAZs ""]}
`

func TestWorkflowPaths(t *testing.T) {
	t.Run("OneResourceFails", func(t *testing.T) {
		s := newStack(t, "", twoVolumes)
		if err := runner.Cloud.SetBehaviour(runner.Account, s.Name, "Logs", simcloud.Behaviour{Fail: "the volume is in error state"}); err != nil {
			t.Fatal(err)
		}
		done := waitDone(t, s, create(t, s, "broken").ID)
		want := "Resource SNAPSHOT failed: Logs (AWS::EC2::Volume " + physicalID(t, s, "Logs") + "): the volume is in error state"
		if done.Status != "FAILED" || done.Action != "CREATE" || *done.StatusReason != want {
			t.Fatalf("got %s %q, want FAILED %q", done.Status, *done.StatusReason, want)
		}
		// The stack is free again: the next snapshot works.
		if err := runner.Cloud.SetBehaviour(runner.Account, s.Name, "Logs", simcloud.Behaviour{}); err != nil {
			t.Fatal(err)
		}
		if again := waitDone(t, s, create(t, s, "again").ID); again.Status != "COMPLETE" {
			t.Fatalf("after a failure: %s %v", again.Status, *again.StatusReason)
		}
	})
	t.Run("NoSnapshotableResources", func(t *testing.T) {
		s := newStack(t, "", "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n")
		done := waitDone(t, s, create(t, s, "").ID)
		if done.Status != "COMPLETE" || len(done.Data.Resources["Topic"].ResourceData) != 0 || done.Data.Resources["Topic"].ResourceData == nil {
			t.Fatalf("got %s %+v", done.Status, done.Data)
		}
	})
	t.Run("ThrottledThenSucceeds", func(t *testing.T) {
		s := newStack(t, "", twoVolumes)
		if err := runner.Cloud.SetBehaviour(runner.Account, s.Name, "Data", simcloud.Behaviour{ThrottleStarts: 2}); err != nil {
			t.Fatal(err)
		}
		created := create(t, s, "throttled")
		if done := waitDone(t, s, created.ID); done.Status != "COMPLETE" {
			t.Fatalf("got %s %v", done.Status, *done.StatusReason)
		}
		events, err := runner.StepFns.Events(context.Background(), created.ID)
		if err != nil {
			t.Fatal(err)
		}
		retried := 0
		for _, e := range events {
			if e.Type == "StateRetried" {
				retried++
			}
		}
		if retried != 2 {
			t.Fatalf("retries = %d, want 2", retried)
		}
	})
	t.Run("ThrottledForEver", func(t *testing.T) {
		s := newStack(t, "", twoVolumes)
		if err := runner.Cloud.SetBehaviour(runner.Account, s.Name, "Data", simcloud.Behaviour{ThrottleStarts: 100}); err != nil {
			t.Fatal(err)
		}
		done := waitDone(t, s, create(t, s, "").ID)
		want := "Resource SNAPSHOT failed: Data (AWS::EC2::Volume " + physicalID(t, s, "Data") + "): AWS kept throttling the snapshot: Rate exceeded"
		if done.Status != "FAILED" || *done.StatusReason != want {
			t.Fatalf("got %s %q, want %q", done.Status, *done.StatusReason, want)
		}
	})
	t.Run("StackUpdatedDuringSnapshot", func(t *testing.T) {
		s := newStack(t, "", twoVolumes)
		if err := runner.Cloud.SetBehaviour(runner.Account, s.Name, "Data", simcloud.Behaviour{Duration: 1500 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		created := create(t, s, "")
		time.Sleep(1100 * time.Millisecond) // into the next second: CreatedAt has whole seconds
		for _, status := range []string{"UPDATE_IN_PROGRESS", "UPDATE_COMPLETE"} {
			if err := runner.Cloud.SetStackStatus(runner.Account, s.Name, status); err != nil {
				t.Fatal(err)
			}
		}
		done := waitDone(t, s, created.ID)
		if done.Status != "FAILED" || *done.StatusReason != "Resource SNAPSHOT failed: the stack "+s.Name+" was updated during the snapshot" {
			t.Fatalf("got %s %q", done.Status, *done.StatusReason)
		}
	})
	t.Run("StackDeletedDuringSnapshot", func(t *testing.T) {
		s := newStack(t, "", twoVolumes)
		if err := runner.Cloud.SetBehaviour(runner.Account, s.Name, "Data", simcloud.Behaviour{Duration: 2 * time.Second}); err != nil {
			t.Fatal(err)
		}
		created := create(t, s, "")
		time.Sleep(200 * time.Millisecond)
		if err := runner.Cloud.DeleteStack(runner.Account, s.Name); err != nil {
			t.Fatal(err)
		}
		status, body := call(t, "GET", runner.SnapshotsURL(s)+"/"+created.ID, "")
		expectError(t, status, body, 404, "EntityNotFound", "The Stack ("+s.Name+") could not be found.")
		snap := waitRecord(t, s, created.ID)
		if snap.Status != snapshot.StatusFailed || !strings.Contains(*snap.StatusReason, "was deleted during the snapshot") {
			t.Fatalf("got %s %v", snap.Status, *snap.StatusReason)
		}
	})
}

// waitRecord polls the store directly, for snapshots whose stack is gone.
func waitRecord(t *testing.T, s snapshot.Stack, id string) snapshot.Snapshot {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		snap, err := runner.Store.Snapshot(context.Background(), snapshot.Key{TenantID: runner.Account, StackID: s.ID, SnapshotID: id})
		if err != nil {
			t.Fatal(err)
		}
		if snap.Status != snapshot.StatusInProgress {
			return snap
		}
	}
	t.Fatalf("snapshot %s still IN_PROGRESS", id)
	return snapshot.Snapshot{}
}

func physicalID(t *testing.T, s snapshot.Stack, logicalID string) string {
	t.Helper()
	resources, err := runner.Cloud.Resources(context.Background(), runner.Account, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resources {
		if r.LogicalID == logicalID {
			return r.PhysicalID
		}
	}
	t.Fatalf("no resource %s", logicalID)
	return ""
}

func TestAPIErrors(t *testing.T) {
	s := newStack(t, "", twoVolumes)
	other := newStack(t, "-other", "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n")
	base := runner.SnapshotsURL(s)
	foreign := waitDone(t, other, create(t, other, "").ID)

	tests := []struct {
		name, method, url, body string
		headers                 []string
		status                  int
		heatType, message       string
	}{
		{"ErrNoBody", "POST", base, "", nil, 400, "HTTPBadRequest", ""},
		{"ErrNotJSON", "POST", base, "{name", nil, 400, "HTTPBadRequest", ""},
		{"ErrNotObject", "POST", base, `"s1"`, nil, 400, "HTTPBadRequest", ""},
		{"ErrNameTooLong", "POST", base, `{"name": "` + strings.Repeat("n", 256) + `"}`, nil, 400, "HTTPBadRequest", "Snapshot name must be no longer than 255 characters."},
		{"ErrUnknownStack", "POST", strings.Replace(base, s.Name, "nope", 1), "{}", nil, 404, "EntityNotFound", "The Stack (nope) could not be found."},
		{"ErrNameDoesNotMatchID", "GET", strings.Replace(base, s.ID, other.ID, 1), "", nil, 404, "EntityNotFound", "The Stack (" + s.Name + ") could not be found."},
		{"ErrUnknownSnapshot", "GET", base + "/6f0c4f52-0000-4000-8000-000000000000", "", nil, 404, "NotFound", "Snapshot with id 6f0c4f52-0000-4000-8000-000000000000 not found"},
		{"ErrSnapshotOfOtherStack", "GET", base + "/" + foreign.ID, "", nil, 404, "SnapshotNotFound", "The Snapshot (" + foreign.ID + ") for Stack (" + s.Name + ") could not be found."},
		{"ErrForeignCaller", "POST", base, "{}", []string{"X-Stacksnap-Caller-Account", "210987654321"}, 403, "HTTPForbidden", "Access was denied to this resource."},
		{"ErrWrongMethod", "PUT", base, "{}", nil, 405, "HTTPMethodNotAllowed", ""},
		{"ErrUnknownPath", "GET", runner.APIURL + "/v1/" + runner.Account + "/stacks", "", nil, 404, "HTTPNotFound", ""},
		{"ErrRoot", "GET", runner.APIURL + "/", "", nil, 404, "HTTPNotFound", ""},
		{"ErrByNameAlone", "GET", runner.APIURL + "/v1/" + runner.Account + "/stacks/" + s.Name + "/snapshots", "", nil, 404, "EntityNotFound", ""},
		{"ErrPostByNameAlone", "POST", runner.APIURL + "/v1/" + runner.Account + "/stacks/" + s.Name + "/snapshots", "{}", nil, 405, "HTTPMethodNotAllowed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := call(t, tt.method, tt.url, tt.body, tt.headers...)
			expectError(t, status, body, tt.status, tt.heatType, tt.message)
		})
	}

	t.Run("ErrStackBusy", func(t *testing.T) {
		busy := newStack(t, "", twoVolumes)
		if err := runner.Cloud.SetStackStatus(runner.Account, busy.Name, "UPDATE_IN_PROGRESS"); err != nil {
			t.Fatal(err)
		}
		status, body := call(t, "POST", runner.SnapshotsURL(busy), "{}")
		expectError(t, status, body, 409, "ActionInProgress", "Stack "+busy.Name+" already has an action (UPDATE) in progress.")
	})
	t.Run("ErrSnapshotInProgress", func(t *testing.T) {
		slow := newStack(t, "", twoVolumes)
		_ = runner.Cloud.SetBehaviour(runner.Account, slow.Name, "Data", simcloud.Behaviour{Duration: time.Second})
		first := create(t, slow, "")
		status, body := call(t, "POST", runner.SnapshotsURL(slow), "{}")
		expectError(t, status, body, 409, "ActionInProgress", "Stack "+slow.Name+" already has an action (SNAPSHOT) in progress.")
		waitDone(t, slow, first.ID)
	})
	t.Run("ErrLimit", func(t *testing.T) {
		full := newStack(t, "", "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n")
		for range 4 {
			waitDone(t, full, create(t, full, "").ID)
		}
		status, body := call(t, "POST", runner.SnapshotsURL(full), "{}")
		expectError(t, status, body, 400, "RequestLimitExceeded", "Request limit exceeded: You have reached the maximum snapshots per stack, 4. Please delete some snapshots.")
		status, body = call(t, "GET", runner.SnapshotsURL(full), "")
		var listed struct{ Snapshots []wireSnapshot }
		if err := json.Unmarshal(body, &listed); err != nil || status != 200 || len(listed.Snapshots) != 4 {
			t.Fatalf("list %d %s", status, body)
		}
		for i := 1; i < len(listed.Snapshots); i++ {
			if listed.Snapshots[i-1].ID < listed.Snapshots[i].ID {
				t.Fatalf("not newest first: %s before %s", listed.Snapshots[i-1].ID, listed.Snapshots[i].ID)
			}
		}
		for _, snap := range listed.Snapshots {
			if snap.Data == nil || snap.Status != "COMPLETE" {
				t.Fatalf("listed without data: %+v", snap)
			}
		}
	})
}

func TestRacingCreatesMakeOneSnapshot(t *testing.T) {
	s := newStack(t, "", twoVolumes)
	const racers = 12
	var wg sync.WaitGroup
	statuses := make(chan int, racers)
	for range racers {
		wg.Go(func() {
			res, err := http.Post(runner.SnapshotsURL(s), "application/json", bytes.NewBufferString(`{"name": "race"}`))
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			statuses <- res.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for st := range statuses {
		counts[st]++
	}
	if counts[200] != 1 || counts[409] != racers-1 {
		t.Fatalf("statuses %v: want one 200 and the rest 409", counts)
	}
	status, body := call(t, "GET", runner.SnapshotsURL(s), "")
	var listed struct{ Snapshots []wireSnapshot }
	if err := json.Unmarshal(body, &listed); err != nil || status != 200 || len(listed.Snapshots) != 1 {
		t.Fatalf("list %d %s", status, body)
	}
	waitDone(t, s, listed.Snapshots[0].ID)
}

// TestHeatStackLookup: python-heatclient resolves a stack name with GET
// /stacks/{name}, without following the redirect, and reads Location.
func TestHeatStackLookup(t *testing.T) {
	s := newStack(t, "", twoVolumes)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get(runner.APIURL + "/v1/" + runner.Account + "/stacks/" + s.Name)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	location := res.Header.Get("Location")
	if res.StatusCode != 302 || strings.SplitN(location, "/stacks/", 2)[1] != s.Name+"/"+s.ID {
		t.Fatalf("%d Location %q", res.StatusCode, location)
	}
	if !strings.HasPrefix(location, runner.APIURL+"/v1/") {
		t.Fatalf("Location %q is not under the endpoint %s: heatclient refuses it", location, runner.APIURL)
	}
	status, body := call(t, "GET", location, "")
	if status != 200 || !strings.Contains(string(body), `"stack_status":"CREATE_COMPLETE"`) {
		t.Fatalf("%d %s", status, body)
	}
}
