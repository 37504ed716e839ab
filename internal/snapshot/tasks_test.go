package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

type tasksFixture struct {
	*serviceFixture
	tasks  *Tasks
	volume *fakeSnapshotter
	snap   Snapshot
}

func newTasksFixture(t *testing.T) *tasksFixture {
	t.Helper()
	f := &tasksFixture{serviceFixture: newServiceFixture(t), volume: &fakeSnapshotter{doneAfter: 2}}
	f.stacks.resources = map[string][]Resource{stackID: {
		{LogicalID: "Data", PhysicalID: "vol-1", Type: "AWS::EC2::Volume"},
		{LogicalID: "Logs", PhysicalID: "vol-2", Type: "AWS::EC2::Volume"},
		{LogicalID: "Topic", PhysicalID: "arn:aws:sns:us-east-1:1:t", Type: "AWS::SNS::Topic"},
	}}
	f.stacks.defs = map[string]Definition{stackID: {
		TemplateBody: `{"Resources":{"Data":{"Type":"AWS::EC2::Volume"}}}`,
		Parameters:   map[string]string{"Size": "10"},
		Tags:         map[string]string{"team": "a"},
	}}
	f.tasks = &Tasks{
		Store: f.store, Stacks: f.stacks,
		Snapshotters: Snapshotters{"AWS::EC2::Volume": f.volume},
		ParseTemplate: func(b []byte) (map[string]any, error) {
			var m map[string]any
			return m, json.Unmarshal(b, &m)
		},
		FirstWait: 5, MaxWait: 30, BusyLimit: 60,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	f.snap = mustCreate(f.serviceFixture)
	return f
}

func (f *tasksFixture) input() WorkflowInput {
	return WorkflowInput{SnapshotID: f.snap.SnapshotID, TenantID: tenant, StackID: stackID, StackName: "web"}
}

// runResource drives one resource's loop as the state machine's Map does.
func (f *tasksFixture) runResource(t *testing.T, id string) error {
	t.Helper()
	ctx := context.Background()
	step, err := f.tasks.StartArtefact(ctx, ArtefactStep{WorkflowInput: f.input(), LogicalID: id})
	for err == nil && !step.Done {
		step, err = f.tasks.CheckArtefact(ctx, step)
	}
	return err
}

func TestTasksComplete(t *testing.T) {
	ctx := context.Background()
	f := newTasksFixture(t)
	plan, err := f.tasks.Plan(ctx, f.input())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(plan.LogicalIDs, ",") != "Data,Logs" {
		t.Fatalf("plan = %v, want the two volumes", plan.LogicalIDs)
	}
	// A retried plan reads the one already written.
	if again, _ := f.tasks.Plan(ctx, f.input()); strings.Join(again.LogicalIDs, ",") != "Data,Logs" {
		t.Fatalf("second plan = %v", again.LogicalIDs)
	}
	for _, id := range plan.LogicalIDs {
		f.volume.checks = 0
		if err := f.runResource(t, id); err != nil {
			t.Fatal(err)
		}
	}
	res, err := f.tasks.Finalize(ctx, f.input())
	if err != nil || res.Status != StatusComplete {
		t.Fatalf("finalize = %+v, %v", res, err)
	}
	snap, _ := f.store.Snapshot(ctx, f.snap.Key)
	if snap.Status != StatusComplete || *snap.StatusReason != ReasonComplete {
		t.Fatalf("snapshot %s %v", snap.Status, snap.StatusReason)
	}
	d := snap.Data
	if d.Name != "web" || d.ID != stackID || d.Action != "SNAPSHOT" || d.Status != "COMPLETE" || d.ProjectID != tenant {
		t.Fatalf("data header %+v", d)
	}
	if d.Environment.Parameters["Size"] != "10" || d.Tags["team"] != "a" || d.Template["Resources"] == nil {
		t.Fatalf("data definition %+v", d)
	}
	if got := d.Resources["Data"]; got.ResourceID != "vol-1" || got.ResourceData["snapshot_id"] != "snap-Data" || got.Action != "SNAPSHOT" || got.Status != "COMPLETE" {
		t.Fatalf("Data resource %+v", got)
	}
	if got := d.Resources["Topic"]; got.Type != "AWS::SNS::Topic" || len(got.ResourceData) != 0 || got.ResourceData == nil {
		t.Fatalf("Topic resource %+v: want resource_data {}", got)
	}
	rec, _ := f.store.StackRecord(ctx, StackKey{tenant, stackID})
	if rec.Lock != nil {
		t.Fatal("lock not released")
	}
	if got := d.Resources["Logs"].ResourceData["checked"]; got != "yes" {
		t.Fatalf("Logs resource_data %v: the data a check reports replaces the start's", d.Resources["Logs"].ResourceData)
	}
	if f.volume.starts != 2 {
		t.Fatalf("starts = %d, want one per volume", f.volume.starts)
	}
	// Finalize again (a retried task) changes nothing.
	if res, err := f.tasks.Finalize(ctx, f.input()); err != nil || res.Status != StatusComplete {
		t.Fatalf("second finalize = %+v, %v", res, err)
	}
}

func TestTasksWaitGrows(t *testing.T) {
	ctx := context.Background()
	f := newTasksFixture(t)
	f.volume.doneAfter = 100
	if _, err := f.tasks.Plan(ctx, f.input()); err != nil {
		t.Fatal(err)
	}
	step, err := f.tasks.StartArtefact(ctx, ArtefactStep{WorkflowInput: f.input(), LogicalID: "Data"})
	if err != nil {
		t.Fatal(err)
	}
	var waits []int
	for range 9 {
		if step, err = f.tasks.CheckArtefact(ctx, step); err != nil {
			t.Fatal(err)
		}
		waits = append(waits, step.WaitSeconds)
	}
	// Half the time waited, between FirstWait (5) and MaxWait (30).
	if got := fmt.Sprint(waits); got != "[5 5 7 11 16 24 30 30 30]" {
		t.Fatalf("waits = %v", waits)
	}
	// A retried start finds the artefact the first one made.
	if _, err := f.tasks.StartArtefact(ctx, ArtefactStep{WorkflowInput: f.input(), LogicalID: "Data"}); err != nil || f.volume.starts != 1 {
		t.Fatalf("retried start: starts = %d, %v", f.volume.starts, err)
	}
}

func TestTasksErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("ArtefactFails", func(t *testing.T) {
		f := newTasksFixture(t)
		f.volume.failure = "volume is in error state"
		_, _ = f.tasks.Plan(ctx, f.input())
		err := f.runResource(t, "Data")
		var rse *ResourceSnapshotError
		if !errors.As(err, &rse) || rse.Message != "Data (AWS::EC2::Volume vol-1): volume is in error state" {
			t.Fatalf("err = %#v", err)
		}
		snap, _ := f.store.Snapshot(ctx, f.snap.Key)
		if r := snap.Resources["Data"]; r.State != ResourceFailed || r.Data["snapshot_id"] != "snap-Data" {
			t.Fatalf("resource %+v: the failed artefact must stay on the record", r)
		}
	})
	t.Run("ThrottlingStaysRetryable", func(t *testing.T) {
		f := newTasksFixture(t)
		f.volume.throttle = 1
		_, _ = f.tasks.Plan(ctx, f.input())
		_, err := f.tasks.StartArtefact(ctx, ArtefactStep{WorkflowInput: f.input(), LogicalID: "Data"})
		if _, ok := err.(*ThrottlingError); !ok {
			t.Fatalf("err = %#v, want *ThrottlingError unwrapped", err)
		}
		if err := f.runResource(t, "Data"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("PermanentStartErrorNamesResource", func(t *testing.T) {
		f := newTasksFixture(t)
		f.volume.startErr = &ResourceSnapshotError{Message: "InvalidVolume.NotFound: the volume does not exist"}
		_, _ = f.tasks.Plan(ctx, f.input())
		_, err := f.tasks.StartArtefact(ctx, ArtefactStep{WorkflowInput: f.input(), LogicalID: "Data"})
		if err == nil || err.Error() != "Data (AWS::EC2::Volume vol-1): InvalidVolume.NotFound: the volume does not exist" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("StackDeletedDuringSnapshot", func(t *testing.T) {
		f := newTasksFixture(t)
		delete(f.stacks.stacks, tenant+"/web")
		_, err := f.tasks.Plan(ctx, f.input())
		if _, ok := err.(*StackChangedError); !ok {
			t.Fatalf("err = %#v", err)
		}
	})
}

func TestMarkFailed(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		err    TaskError
		reason string
	}{
		{"ResourceError", TaskError{"ResourceSnapshotError", `{"errorType":"ResourceSnapshotError","errorMessage":"Data (AWS::EC2::Volume vol-1): boom"}`}, "Resource SNAPSHOT failed: Data (AWS::EC2::Volume vol-1): boom"},
		{"PlainCause", TaskError{"StackChangedError", "the stack web was deleted during the snapshot"}, "Resource SNAPSHOT failed: the stack web was deleted during the snapshot"},
		{"Throttled", TaskError{"ThrottlingError", `{"errorMessage":"Rate exceeded"}`}, "Resource SNAPSHOT failed: AWS kept throttling the snapshot: Rate exceeded"},
		{"Timeout", TaskError{"States.Timeout", ""}, "Resource SNAPSHOT failed: a step of the snapshot workflow timed out"},
		{"InternalHidesDetail", TaskError{"wrapError", `{"errorMessage":"dynamodb: table stacksnap-prod not found"}`}, "Resource SNAPSHOT failed: an internal error stopped the snapshot (wrapError)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newTasksFixture(t)
			res, err := f.tasks.MarkFailed(ctx, FailInput{WorkflowInput: f.input(), Error: tt.err})
			if err != nil || res.Status != StatusFailed {
				t.Fatalf("%+v %v", res, err)
			}
			snap, _ := f.store.Snapshot(ctx, f.snap.Key)
			if snap.Status != StatusFailed || *snap.StatusReason != tt.reason {
				t.Fatalf("got %s %q, want %q", snap.Status, *snap.StatusReason, tt.reason)
			}
			if rec, _ := f.store.StackRecord(ctx, StackKey{tenant, stackID}); rec.Lock != nil {
				t.Fatal("lock not released")
			}
			// Marking again (a retried task) is harmless.
			if _, err := f.tasks.MarkFailed(ctx, FailInput{WorkflowInput: f.input(), Error: tt.err}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTasksBusyResource(t *testing.T) {
	ctx := context.Background()
	t.Run("StartedAgainAtTheNextCheck", func(t *testing.T) {
		f := newTasksFixture(t)
		f.volume.busy = 2
		_, _ = f.tasks.Plan(ctx, f.input())
		step, err := f.tasks.StartArtefact(ctx, ArtefactStep{WorkflowInput: f.input(), LogicalID: "Data"})
		if err != nil || step.Done {
			t.Fatalf("busy start: %+v %v", step, err)
		}
		if snap, _ := f.store.Snapshot(ctx, f.snap.Key); snap.Resources["Data"].State != ResourcePending {
			t.Fatalf("a busy resource stays PENDING, got %s", snap.Resources["Data"].State)
		}
		if err := f.runResource(t, "Data"); err != nil {
			t.Fatal(err)
		}
		if f.volume.starts != 1 {
			t.Fatalf("starts = %d", f.volume.starts)
		}
	})
	t.Run("TheArtefactsWaitStartsWhenItStarts", func(t *testing.T) {
		f := newTasksFixture(t)
		f.volume.busy, f.volume.doneAfter = 3, 100
		_, _ = f.tasks.Plan(ctx, f.input())
		step, _ := f.tasks.StartArtefact(ctx, ArtefactStep{WorkflowInput: f.input(), LogicalID: "Data"})
		for range 3 {
			step, _ = f.tasks.CheckArtefact(ctx, step)
		}
		if f.volume.starts != 1 || step.WaitSeconds != 5 || step.WaitedSeconds != 0 {
			t.Fatalf("after a busy spell: starts %d, step %+v: want the first wait again", f.volume.starts, step)
		}
	})
	t.Run("BusyAtACheckIsNotReadyYet", func(t *testing.T) {
		f := newTasksFixture(t)
		f.volume.checkBusy = 2
		_, _ = f.tasks.Plan(ctx, f.input())
		if err := f.runResource(t, "Data"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrBusyTooLong", func(t *testing.T) {
		f := newTasksFixture(t)
		f.volume.busy = 1000
		_, _ = f.tasks.Plan(ctx, f.input())
		err := f.runResource(t, "Data")
		var rse *ResourceSnapshotError
		if !errors.As(err, &rse) || !strings.HasPrefix(rse.Message, "Data (AWS::EC2::Volume vol-1): still busy after 1m") ||
			!strings.HasSuffix(rse.Message, "InvalidDBInstanceState: the instance is backing up") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestTasksRecordFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("PermanentStartErrorIsRecordedAndNamesTheReason", func(t *testing.T) {
		f := newTasksFixture(t)
		f.volume.startErr = &ResourceSnapshotError{Message: "InvalidVolume.NotFound: the volume vol-1 does not exist"}
		_, _ = f.tasks.Plan(ctx, f.input())
		_, _ = f.tasks.StartArtefact(ctx, ArtefactStep{WorkflowInput: f.input(), LogicalID: "Data"})
		// A Distributed Map passes on only that an iteration failed.
		_, err := f.tasks.MarkFailed(ctx, FailInput{WorkflowInput: f.input(), Error: TaskError{Error: "States.ExceedToleratedFailureThreshold", Cause: "The specified tolerated failure threshold was exceeded"}})
		if err != nil {
			t.Fatal(err)
		}
		snap, _ := f.store.Snapshot(ctx, f.snap.Key)
		if want := "Resource SNAPSHOT failed: Data (AWS::EC2::Volume vol-1): InvalidVolume.NotFound: the volume vol-1 does not exist"; *snap.StatusReason != want {
			t.Fatalf("reason %q, want %q", *snap.StatusReason, want)
		}
	})
	t.Run("ArtefactMadeAfterTheSnapshotFailedIsStillRecorded", func(t *testing.T) {
		f := newTasksFixture(t)
		_, _ = f.tasks.Plan(ctx, f.input())
		// Another resource failed and MarkFailed ran while this start was on its way.
		if err := f.store.Fail(ctx, f.snap.Key, "Resource SNAPSHOT failed: Logs: boom"); err != nil {
			t.Fatal(err)
		}
		snap, _ := f.store.Snapshot(ctx, f.snap.Key)
		res := snap.Resources["Data"]
		if _, err := f.tasks.start(ctx, snap, res, f.volume, ArtefactStep{WorkflowInput: f.input(), LogicalID: "Data"}); err != nil {
			t.Fatal(err)
		}
		snap, _ = f.store.Snapshot(ctx, f.snap.Key)
		if got := snap.Resources["Data"]; got.Data["snapshot_id"] != "snap-Data" || snap.Status != StatusFailed {
			t.Fatalf("resource %+v on a %s snapshot: the artefact must be recorded", got, snap.Status)
		}
	})
}

func TestFinalizeRefusesAChangedStack(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		change  func(f *tasksFixture)
		message string
	}{
		{"ErrStackUpdating", func(f *tasksFixture) { setStatus(f.serviceFixture, "UPDATE_IN_PROGRESS") }, "the stack web was being changed (UPDATE) during the snapshot"},
		{"ErrUpdatedInPlace", func(f *tasksFixture) {
			s := f.stacks.stacks[tenant+"/web"]
			s.UpdatedAt = f.snap.CreatedAt.Add(time.Minute)
			f.stacks.stacks[tenant+"/web"] = s
		}, "the stack web was updated during the snapshot"},
		{"ErrResourceReplaced", func(f *tasksFixture) { f.stacks.resources[stackID][0].PhysicalID = "vol-new" }, "the stack web changed during the snapshot: Data was replaced"},
		{"ErrResourceAdded", func(f *tasksFixture) {
			f.stacks.resources[stackID] = append(f.stacks.resources[stackID], Resource{LogicalID: "Extra", PhysicalID: "x", Type: "AWS::SNS::Topic"})
		}, "the stack web changed during the snapshot: Extra was added"},
		{"ErrResourceRemoved", func(f *tasksFixture) { f.stacks.resources[stackID] = f.stacks.resources[stackID][1:] }, "the stack web changed during the snapshot: Data was removed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newTasksFixture(t)
			plan, _ := f.tasks.Plan(ctx, f.input())
			for _, id := range plan.LogicalIDs {
				f.volume.checks = 0
				if err := f.runResource(t, id); err != nil {
					t.Fatal(err)
				}
			}
			tt.change(f)
			_, err := f.tasks.Finalize(ctx, f.input())
			var changed *StackChangedError
			if !errors.As(err, &changed) || changed.Message != tt.message {
				t.Fatalf("err = %v, want %q", err, tt.message)
			}
		})
	}
}

func TestPlanSkipsResourcesNeverMade(t *testing.T) {
	ctx := context.Background()
	f := newTasksFixture(t)
	f.stacks.resources[stackID][1].PhysicalID = "" // Logs: CREATE_FAILED
	plan, err := f.tasks.Plan(ctx, f.input())
	if err != nil || strings.Join(plan.LogicalIDs, ",") != "Data" {
		t.Fatalf("plan %v %v", plan.LogicalIDs, err)
	}
}

func TestFailResource(t *testing.T) {
	ctx := context.Background()
	f := newTasksFixture(t)
	_, _ = f.tasks.Plan(ctx, f.input())
	in := FailResourceInput{
		ArtefactStep: ArtefactStep{WorkflowInput: f.input(), LogicalID: "Data"},
		Error:        TaskError{Error: "ThrottlingError", Cause: `{"errorMessage": "Rate exceeded", "errorType": "ThrottlingError"}`},
	}
	if _, err := f.tasks.FailResource(ctx, in); err != nil {
		t.Fatal(err)
	}
	// A second catch (or a retried task) keeps the first reason.
	in.Error = TaskError{Error: "States.Timeout"}
	if _, err := f.tasks.FailResource(ctx, in); err != nil {
		t.Fatal(err)
	}
	// A step run again on the failed resource fails again, with its reason.
	_, err := f.tasks.CheckArtefact(ctx, ArtefactStep{WorkflowInput: f.input(), LogicalID: "Data"})
	if err == nil || err.Error() != "Data (AWS::EC2::Volume vol-1): AWS kept throttling the snapshot: Rate exceeded" {
		t.Fatalf("err = %v", err)
	}
	if _, err := f.tasks.MarkFailed(ctx, FailInput{WorkflowInput: f.input(), Error: TaskError{Error: "States.ExceedToleratedFailureThreshold"}}); err != nil {
		t.Fatal(err)
	}
	snap, _ := f.store.Snapshot(ctx, f.snap.Key)
	if want := "Resource SNAPSHOT failed: Data (AWS::EC2::Volume vol-1): AWS kept throttling the snapshot: Rate exceeded"; *snap.StatusReason != want {
		t.Fatalf("reason %q, want %q", *snap.StatusReason, want)
	}
}
