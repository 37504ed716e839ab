package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

const (
	tenant  = "123456789012"
	stackID = "11111111-2222-3333-4444-555555555555"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

type serviceFixture struct {
	svc       *Service
	store     *memStore
	stacks    *fakeStacks
	workflows *fakeWorkflows
	clock     *fixedClock
}

func newServiceFixture(t *testing.T) *serviceFixture {
	t.Helper()
	f := &serviceFixture{
		store: newMemStore(),
		stacks: &fakeStacks{stacks: map[string]Stack{
			tenant + "/web":   {Name: "web", ID: stackID, ARN: "arn:aws:cloudformation:us-east-1:" + tenant + ":stack/web/" + stackID, Status: "CREATE_COMPLETE"},
			tenant + "/other": {Name: "other", ID: "99999999-2222-3333-4444-555555555555", Status: "UPDATE_COMPLETE"},
		}},
		workflows: &fakeWorkflows{state: ExecutionRunning},
		clock:     &fixedClock{t: t0},
	}
	ids := 0
	f.svc = &Service{
		Store: f.store, Stacks: f.stacks, Workflows: f.workflows,
		Limit: 3, Now: f.clock.now, LockGrace: time.Minute,
		NewID: func() string { ids++; return fmt.Sprintf("0000000%d-0000-7000-8000-000000000000", ids) },
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	return f
}

var (
	caller = Caller{AccountID: tenant}
	webRef = StackRef{TenantID: tenant, StackName: "web", StackID: stackID}
)

func ptr[T any](v T) *T { return &v }

// assertError checks both the code and the message of an error.
func assertError(t *testing.T, err error, code Code, message string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s %q", code, message)
	}
	if got := ErrorCode(err); got != code {
		t.Fatalf("code = %s, want %s (error %v)", got, code, err)
	}
	if got := ErrorMessage(err); message != "" && got != message {
		t.Fatalf("message = %q, want %q", got, message)
	}
}

func (f *serviceFixture) finish(t *testing.T, snap Snapshot) {
	t.Helper()
	ctx := context.Background()
	if err := f.store.Complete(ctx, snap.Key, StackData{}, ReasonComplete); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Release(ctx, StackKey{tenant, stackID}, snap.SnapshotID, false); err != nil {
		t.Fatal(err)
	}
}

func TestCreate(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		f := newServiceFixture(t)
		snap, err := f.svc.Create(ctx, caller, webRef, ptr("s1"))
		if err != nil {
			t.Fatal(err)
		}
		if snap.Status != StatusInProgress || snap.Action != ActionCreate || snap.StatusReason != nil || snap.Data != nil || *snap.Name != "s1" {
			t.Fatalf("snapshot = %+v", snap)
		}
		if !snap.CreatedAt.Equal(t0) {
			t.Fatalf("created at %v", snap.CreatedAt)
		}
		want := WorkflowInput{SnapshotID: snap.SnapshotID, TenantID: tenant, StackID: stackID, StackName: "web"}
		if len(f.workflows.started) != 1 || f.workflows.started[0] != want {
			t.Fatalf("started %+v, want %+v", f.workflows.started, want)
		}
		rec, _ := f.store.StackRecord(ctx, StackKey{tenant, stackID})
		if rec.SnapshotCount != 1 || rec.Lock == nil || rec.Lock.SnapshotID != snap.SnapshotID {
			t.Fatalf("stack record %+v", rec)
		}
	})
	t.Run("NameOf255CharactersOK", func(t *testing.T) {
		f := newServiceFixture(t)
		if _, err := f.svc.Create(ctx, caller, webRef, ptr(strings.Repeat("é", 255))); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("NoName", func(t *testing.T) {
		f := newServiceFixture(t)
		snap, err := f.svc.Create(ctx, caller, webRef, nil)
		if err != nil || snap.Name != nil {
			t.Fatalf("snap %+v err %v", snap, err)
		}
	})

	tests := []struct {
		name    string
		setup   func(t *testing.T, f *serviceFixture)
		caller  Caller
		ref     StackRef
		snap    *string
		code    Code
		message string
	}{
		{name: "ErrNameTooLong", snap: ptr(strings.Repeat("x", 256)), code: CodeBadRequest, message: "Snapshot name must be no longer than 255 characters."},
		{name: "ErrForeignCaller", caller: Caller{AccountID: "210987654321"}, code: CodeForbidden, message: "Access was denied to this resource."},
		{name: "ErrStackMissing", ref: StackRef{TenantID: tenant, StackName: "nope", StackID: stackID}, code: CodeStackNotFound, message: "The Stack (nope) could not be found."},
		{name: "ErrNameDoesNotMatchID", ref: StackRef{TenantID: tenant, StackName: "other", StackID: stackID}, code: CodeStackNotFound, message: "The Stack (other) could not be found."},
		{name: "ErrStackDeleted", setup: func(t *testing.T, f *serviceFixture) { setStatus(f, "DELETE_COMPLETE") }, code: CodeStackNotFound, message: "The Stack (web) could not be found."},
		{name: "ErrStackUpdating", setup: func(t *testing.T, f *serviceFixture) { setStatus(f, "UPDATE_IN_PROGRESS") }, code: CodeActionInProgress, message: "Stack web already has an action (UPDATE) in progress."},
		{name: "ErrStackCleaningUp", setup: func(t *testing.T, f *serviceFixture) { setStatus(f, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS") }, code: CodeActionInProgress, message: "Stack web already has an action (UPDATE_ROLLBACK) in progress."},
		{name: "ErrStackLookupFails", setup: func(t *testing.T, f *serviceFixture) { f.stacks.err = errors.New("cloudformation down") }, code: CodeInternal},
		{name: "ErrSnapshotRunning", setup: func(t *testing.T, f *serviceFixture) { mustCreate(f) }, code: CodeActionInProgress, message: "Stack web already has an action (SNAPSHOT) in progress."},
		{name: "ErrLimit", setup: func(t *testing.T, f *serviceFixture) {
			for range 3 {
				f.finish(t, mustCreate(f))
			}
		}, code: CodeLimitExceeded, message: "Request limit exceeded: You have reached the maximum snapshots per stack, 3. Please delete some snapshots."},
		{name: "ErrLimitZero", setup: func(t *testing.T, f *serviceFixture) { f.svc.Limit = 0 }, code: CodeLimitExceeded, message: "Request limit exceeded: You have reached the maximum snapshots per stack, 0. Please delete some snapshots."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newServiceFixture(t)
			if tt.setup != nil {
				tt.setup(t, f)
			}
			c, ref := caller, webRef
			if tt.caller.AccountID != "" {
				c = tt.caller
			}
			if tt.ref.StackName != "" {
				ref = tt.ref
			}
			_, err := f.svc.Create(ctx, c, ref, tt.snap)
			assertError(t, err, tt.code, tt.message)
		})
	}

	t.Run("FailedStackCanBeSnapshotted", func(t *testing.T) {
		f := newServiceFixture(t)
		setStatus(f, "UPDATE_ROLLBACK_FAILED")
		if _, err := f.svc.Create(ctx, caller, webRef, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("UnlimitedWithMinusOne", func(t *testing.T) {
		f := newServiceFixture(t)
		f.svc.Limit = -1
		for range 10 {
			f.finish(t, mustCreate(f))
		}
	})
	t.Run("FailedSnapshotsCount", func(t *testing.T) {
		f := newServiceFixture(t)
		f.svc.Limit = 1
		snap := mustCreate(f)
		if err := f.store.Fail(ctx, snap.Key, "x"); err != nil {
			t.Fatal(err)
		}
		_ = f.store.Release(ctx, StackKey{tenant, stackID}, snap.SnapshotID, false)
		_, err := f.svc.Create(ctx, caller, webRef, nil)
		assertError(t, err, CodeLimitExceeded, "")
	})
}

func TestCreateHealsLocks(t *testing.T) {
	ctx := context.Background()
	t.Run("LockWithoutRecordIsReleasedAfterGrace", func(t *testing.T) {
		f := newServiceFixture(t)
		lock := Lock{SnapshotID: "crashed", Action: LockSnapshot, Since: t0}
		if err := f.store.Reserve(ctx, StackRecord{StackKey: StackKey{tenant, stackID}}, lock, 3); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.Create(ctx, caller, webRef, nil)
		assertError(t, err, CodeActionInProgress, "")

		f.clock.t = t0.Add(2 * time.Minute)
		if _, err := f.svc.Create(ctx, caller, webRef, nil); err != nil {
			t.Fatal(err)
		}
		rec, _ := f.store.StackRecord(ctx, StackKey{tenant, stackID})
		if rec.SnapshotCount != 1 {
			t.Fatalf("count = %d, want 1: the crashed reservation is given back", rec.SnapshotCount)
		}
	})
	t.Run("WorkflowThatEndedWithoutResult", func(t *testing.T) {
		f := newServiceFixture(t)
		old := mustCreate(f)
		f.workflows.state, f.workflows.detail = ExecutionEnded, "TIMED_OUT"
		f.clock.t = t0.Add(2 * time.Minute)
		if _, err := f.svc.Create(ctx, caller, webRef, nil); err != nil {
			t.Fatal(err)
		}
		got, _ := f.store.Snapshot(ctx, old.Key)
		if got.Status != StatusFailed || !strings.Contains(*got.StatusReason, "TIMED_OUT") || !strings.HasPrefix(*got.StatusReason, ReasonFailedPrefix) {
			t.Fatalf("old snapshot %s %v", got.Status, *got.StatusReason)
		}
	})
	t.Run("RunningWorkflowKeepsLock", func(t *testing.T) {
		f := newServiceFixture(t)
		mustCreate(f)
		f.clock.t = t0.Add(time.Hour)
		_, err := f.svc.Create(ctx, caller, webRef, nil)
		assertError(t, err, CodeActionInProgress, "Stack web already has an action (SNAPSHOT) in progress.")
	})
	t.Run("LockOfFinishedSnapshot", func(t *testing.T) {
		f := newServiceFixture(t)
		old := mustCreate(f)
		_ = f.store.Complete(ctx, old.Key, StackData{}, ReasonComplete) // crashed before the release
		if _, err := f.svc.Create(ctx, caller, webRef, nil); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCreateUndoesHalfWork(t *testing.T) {
	ctx := context.Background()
	t.Run("WorkflowStartFails", func(t *testing.T) {
		f := newServiceFixture(t)
		f.workflows.startErr = errors.New("states down")
		_, err := f.svc.Create(ctx, caller, webRef, nil)
		assertError(t, err, CodeInternal, "")
		page, _ := f.store.ListSnapshots(ctx, StackKey{tenant, stackID}, ListOptions{})
		if len(page.Snapshots) != 1 || page.Snapshots[0].Status != StatusFailed {
			t.Fatalf("snapshots %+v", page.Snapshots)
		}
		rec, _ := f.store.StackRecord(ctx, StackKey{tenant, stackID})
		if rec.Lock != nil || rec.SnapshotCount != 1 {
			t.Fatalf("stack record %+v", rec)
		}
	})
	t.Run("RecordWriteFails", func(t *testing.T) {
		f := newServiceFixture(t)
		f.store.failCreate = errors.New("dynamodb down")
		_, err := f.svc.Create(ctx, caller, webRef, nil)
		assertError(t, err, CodeInternal, "")
		rec, _ := f.store.StackRecord(ctx, StackKey{tenant, stackID})
		if rec.Lock != nil || rec.SnapshotCount != 0 {
			t.Fatalf("stack record %+v", rec)
		}
	})
}

func TestGet(t *testing.T) {
	ctx := context.Background()
	f := newServiceFixture(t)
	snap := mustCreate(f)
	otherRef := StackRef{TenantID: tenant, StackName: "other", StackID: "99999999-2222-3333-4444-555555555555"}

	got, err := f.svc.Get(ctx, caller, webRef, snap.SnapshotID)
	if err != nil || got.SnapshotID != snap.SnapshotID {
		t.Fatalf("got %+v, %v", got, err)
	}
	tests := []struct {
		name    string
		caller  Caller
		ref     StackRef
		id      string
		code    Code
		message string
	}{
		{"ErrUnknownSnapshot", caller, webRef, "nope", CodeNotFound, "Snapshot with id nope not found"},
		{"ErrSnapshotOfOtherStack", caller, otherRef, snap.SnapshotID, CodeSnapshotNotFound, "The Snapshot (" + snap.SnapshotID + ") for Stack (other) could not be found."},
		{"ErrStackCheckedFirst", caller, StackRef{TenantID: tenant, StackName: "gone", StackID: stackID}, "nope", CodeStackNotFound, "The Stack (gone) could not be found."},
		{"ErrForeignCaller", Caller{AccountID: "1"}, webRef, snap.SnapshotID, CodeForbidden, "Access was denied to this resource."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.Get(ctx, tt.caller, tt.ref, tt.id)
			assertError(t, err, tt.code, tt.message)
		})
	}
	t.Run("ErrSnapshotOfOtherTenant", func(t *testing.T) {
		foreign := Key{TenantID: "210987654321", StackID: "x", SnapshotID: "foreign"}
		_ = f.store.CreateSnapshot(ctx, Snapshot{Key: foreign, Status: StatusComplete})
		_, err := f.svc.Get(ctx, caller, webRef, "foreign")
		assertError(t, err, CodeNotFound, "Snapshot with id foreign not found")
	})
	t.Run("HealsSnapshotWhoseWorkflowNeverStarted", func(t *testing.T) {
		f.workflows.state = ExecutionMissing
		f.clock.t = t0.Add(5 * time.Minute)
		got, err := f.svc.Get(ctx, caller, webRef, snap.SnapshotID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != StatusFailed || *got.StatusReason != ReasonFailedPrefix+"the snapshot workflow never started or was lost" {
			t.Fatalf("got %s %v", got.Status, got.StatusReason)
		}
		rec, _ := f.store.StackRecord(ctx, StackKey{tenant, stackID})
		if rec.Lock != nil {
			t.Fatalf("lock still held: %+v", rec.Lock)
		}
	})
}

func TestList(t *testing.T) {
	ctx := context.Background()
	f := newServiceFixture(t)
	first := mustCreate(f)
	f.finish(t, first)
	second := mustCreate(f)
	got, err := f.svc.List(ctx, caller, webRef, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].SnapshotID != second.SnapshotID || got[1].SnapshotID != first.SnapshotID {
		t.Fatalf("list = %+v", got)
	}
	f.workflows.state = ExecutionMissing
	f.clock.t = t0.Add(time.Hour)
	if got, err := f.svc.List(ctx, caller, webRef, ListOptions{Status: StatusInProgress}); err != nil || len(got) != 0 {
		t.Fatalf("IN_PROGRESS after healing the lost one: %+v %v", got, err)
	}
	_, err = f.svc.List(ctx, caller, webRef, ListOptions{Status: "DONE"})
	assertError(t, err, CodeBadRequest, "status must be one of IN_PROGRESS, COMPLETE, FAILED")
	_, err = f.svc.List(ctx, caller, StackRef{TenantID: tenant, StackName: "web", StackID: "wrong"}, ListOptions{})
	assertError(t, err, CodeStackNotFound, "The Stack (web) could not be found.")
}

func setStatus(f *serviceFixture, status string) {
	s := f.stacks.stacks[tenant+"/web"]
	s.Status = status
	f.stacks.stacks[tenant+"/web"] = s
}

func mustCreate(f *serviceFixture) Snapshot {
	snap, err := f.svc.Create(context.Background(), caller, webRef, nil)
	if err != nil {
		panic(err)
	}
	return snap
}

// lostAnswers is a store whose writes succeed but answer as the SDK's retry
// of them would: with a failed condition.
type lostAnswers struct{ *memStore }

func (l lostAnswers) Reserve(ctx context.Context, rec StackRecord, lock Lock, limit int) error {
	if err := l.memStore.Reserve(ctx, rec, lock, limit); err != nil {
		return err
	}
	return ErrStoreConflict
}

func (l lostAnswers) CreateSnapshot(ctx context.Context, s Snapshot) error {
	if err := l.memStore.CreateSnapshot(ctx, s); err != nil {
		return err
	}
	return ErrStoreConflict
}

func TestCreateSurvivesRetriedWrites(t *testing.T) {
	f := newServiceFixture(t)
	f.svc.Store = lostAnswers{f.store}
	snap, err := f.svc.Create(context.Background(), caller, webRef, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.store.Snapshot(context.Background(), snap.Key); got.Status != StatusInProgress || len(f.workflows.started) != 1 {
		t.Fatalf("snapshot %s, %d workflows", got.Status, len(f.workflows.started))
	}
}

func TestIDsAreCheckedBeforeTheStore(t *testing.T) {
	ctx := context.Background()
	f := newServiceFixture(t)
	long := strings.Repeat("a", 1100)
	_, err := f.svc.Get(ctx, caller, webRef, long)
	assertError(t, err, CodeNotFound, "Snapshot with id "+long+" not found")
	_, err = f.svc.Get(ctx, caller, webRef, "6F0C4F52-0000-4000-8000-000000000000")
	assertError(t, err, CodeNotFound, "")
	_, err = f.svc.List(ctx, caller, webRef, ListOptions{Marker: long})
	assertError(t, err, CodeBadRequest, "marker must be the id of a snapshot")
}

func TestLookup(t *testing.T) {
	ctx := context.Background()
	f := newServiceFixture(t)
	if s, err := f.svc.Lookup(ctx, caller, tenant, "web"); err != nil || s.ID != stackID {
		t.Fatalf("%+v %v", s, err)
	}
	_, err := f.svc.Lookup(ctx, caller, tenant, "nope")
	assertError(t, err, CodeStackNotFound, "The Stack (nope) could not be found.")
	_, err = f.svc.Lookup(ctx, Caller{AccountID: "1"}, tenant, "web")
	assertError(t, err, CodeForbidden, "Access was denied to this resource.")
	setStatus(f, "DELETE_COMPLETE")
	_, err = f.svc.Lookup(ctx, caller, tenant, "web")
	assertError(t, err, CodeStackNotFound, "The Stack (web) could not be found.")
}

func TestReconcile(t *testing.T) {
	ctx := context.Background()
	t.Run("EndedWorkflowFailsTheSnapshotAtOnce", func(t *testing.T) {
		f := newServiceFixture(t)
		snap := mustCreate(f)
		// Step Functions may still answer RUNNING: the event is final.
		in := WorkflowInput{SnapshotID: snap.SnapshotID, TenantID: tenant, StackID: stackID, StackName: "web"}
		if err := f.svc.Reconcile(ctx, in, "ABORTED"); err != nil {
			t.Fatal(err)
		}
		got, _ := f.store.Snapshot(ctx, snap.Key)
		if got.Status != StatusFailed || *got.StatusReason != "Resource SNAPSHOT failed: the snapshot workflow ended (ABORTED) without recording a result" {
			t.Fatalf("%s %v", got.Status, *got.StatusReason)
		}
		if rec, _ := f.store.StackRecord(ctx, StackKey{tenant, stackID}); rec.Lock != nil {
			t.Fatal("lock kept")
		}
	})
	t.Run("ReasonNamesARecordedFailure", func(t *testing.T) {
		f := newServiceFixture(t)
		snap := mustCreate(f)
		plan := map[string]ResourceProgress{"Data": {LogicalID: "Data", PhysicalID: "vol-1", Type: "AWS::EC2::Volume", State: ResourceFailed, Reason: "boom"}}
		_ = f.store.SetPlan(ctx, snap.Key, plan)
		if err := f.svc.Reconcile(ctx, WorkflowInput{SnapshotID: snap.SnapshotID, TenantID: tenant, StackID: stackID}, "FAILED"); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.store.Snapshot(ctx, snap.Key); *got.StatusReason != "Resource SNAPSHOT failed: Data (AWS::EC2::Volume vol-1): boom" {
			t.Fatalf("%q", *got.StatusReason)
		}
	})
	t.Run("FinishedSnapshotFreesItsStack", func(t *testing.T) {
		f := newServiceFixture(t)
		snap := mustCreate(f)
		_ = f.store.Complete(ctx, snap.Key, StackData{}, ReasonComplete) // the release was lost
		if err := f.svc.Reconcile(ctx, WorkflowInput{SnapshotID: snap.SnapshotID, TenantID: tenant, StackID: stackID}, "FAILED"); err != nil {
			t.Fatal(err)
		}
		if rec, _ := f.store.StackRecord(ctx, StackKey{tenant, stackID}); rec.Lock != nil {
			t.Fatal("lock kept")
		}
		if got, _ := f.store.Snapshot(ctx, snap.Key); got.Status != StatusComplete {
			t.Fatalf("a COMPLETE snapshot became %s", got.Status)
		}
	})
	t.Run("UnknownSnapshotIsIgnored", func(t *testing.T) {
		f := newServiceFixture(t)
		if err := f.svc.Reconcile(ctx, WorkflowInput{SnapshotID: "x", TenantID: tenant, StackID: stackID}, "FAILED"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestStackNamedByItsARNIsNotFound(t *testing.T) {
	f := newServiceFixture(t)
	arn := f.stacks.stacks[tenant+"/web"].ARN
	f.stacks.stacks[tenant+"/"+arn] = f.stacks.stacks[tenant+"/web"] // CloudFormation finds stacks by ARN too
	_, err := f.svc.Get(context.Background(), caller, StackRef{TenantID: tenant, StackName: arn, StackID: stackID}, "x")
	assertError(t, err, CodeStackNotFound, "The Stack ("+arn+") could not be found.")
}
