package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"
)

// Tasks are the steps of the snapshot workflow. The state machine calls
// them in order: Plan, then StartArtefact and CheckArtefact for each
// resource that has an artefact (FailResource when one of them ends in
// error), then Finalize; any failure goes to MarkFailed. Each step is
// idempotent, because Step Functions may run a task again.
type Tasks struct {
	Store         Store
	Stacks        Stacks
	Snapshotters  Snapshotters
	ParseTemplate func(body []byte) (map[string]any, error)
	// FirstWait and MaxWait bound the wait between checks of an artefact,
	// in seconds. Between them the wait is half the time already waited:
	// an artefact is seen at most 50% of its duration after it is ready,
	// and the number of checks (state transitions, what Step Functions
	// bills) grows with the logarithm of its duration, not linearly.
	// `make bench` measures both.
	FirstWait int
	MaxWait   int
	// BusyLimit is how long, in seconds, a resource may stay busy (an RDS
	// instance in its backup window, too many snapshots in progress)
	// before its snapshot fails.
	BusyLimit int
	Log       *slog.Logger
}

// PlanOutput lists the resources that get an artefact.
type PlanOutput struct {
	LogicalIDs []string `json:"logical_ids"`
}

// ArtefactStep is the state of one resource's loop in the workflow's Map:
// its input and, with Done and WaitSeconds, its output.
type ArtefactStep struct {
	WorkflowInput
	LogicalID string `json:"logical_id"`
	Done      bool   `json:"done"`
	// WaitSeconds is the wait before the next check; WaitedSeconds the
	// time waited since the start.
	WaitSeconds   int `json:"wait_seconds"`
	WaitedSeconds int `json:"waited_seconds"`
}

// FailInput is what the Catch of the state machine hands to MarkFailed.
type FailInput struct {
	WorkflowInput
	Error TaskError `json:"error"`
}

// TaskError is Step Functions' error output: Error is the error type,
// Cause its message (for a Lambda task, the JSON of Lambda's error).
type TaskError struct {
	Error string `json:"Error"`
	Cause string `json:"Cause"`
}

// Result is the end of a workflow.
type Result struct {
	SnapshotID string `json:"snapshot_id"`
	Status     Status `json:"status"`
}

// Plan lists the stack's resources and writes them on the snapshot record.
func (t *Tasks) Plan(ctx context.Context, in WorkflowInput) (PlanOutput, error) {
	snap, err := t.inProgress(ctx, in.Key())
	if err != nil {
		return PlanOutput{}, err
	}
	plan := snap.Resources
	if len(plan) == 0 {
		if plan, err = t.plan(ctx, snap); err != nil {
			return PlanOutput{}, err
		}
		if err := t.Store.SetPlan(ctx, snap.Key, plan); err != nil {
			return PlanOutput{}, fmt.Errorf("write plan: %w", err)
		}
	}
	out := PlanOutput{LogicalIDs: []string{}}
	for id, p := range plan {
		if p.State != ResourceNoSnapshot {
			out.LogicalIDs = append(out.LogicalIDs, id)
		}
	}
	slices.Sort(out.LogicalIDs)
	return out, nil
}

func (t *Tasks) plan(ctx context.Context, snap Snapshot) (map[string]ResourceProgress, error) {
	stack, err := t.liveStack(ctx, snap)
	if err != nil {
		return nil, err
	}
	resources, err := t.Stacks.Resources(ctx, snap.TenantID, stack)
	if err != nil {
		return nil, err
	}
	plan := make(map[string]ResourceProgress, len(resources))
	for _, r := range resources {
		state := ResourcePending
		// A resource with no physical id was never made (its creation
		// failed): there is nothing to snapshot.
		if _, ok := t.Snapshotters[r.Type]; !ok || r.PhysicalID == "" {
			state = ResourceNoSnapshot
		}
		plan[r.LogicalID] = ResourceProgress{LogicalID: r.LogicalID, PhysicalID: r.PhysicalID, Type: r.Type, State: state}
	}
	return plan, nil
}

// StartArtefact starts one resource's artefact and records its ids at once.
// A start that already happened is not repeated.
func (t *Tasks) StartArtefact(ctx context.Context, in ArtefactStep) (ArtefactStep, error) {
	snap, res, snapshotter, err := t.resource(ctx, in)
	if err != nil {
		return in, err
	}
	in.Done, in.WaitSeconds, in.WaitedSeconds = false, t.FirstWait, 0
	switch res.State {
	case ResourcePending:
		return t.start(ctx, snap, res, snapshotter, in)
	case ResourceFailed:
		return in, failedAlready(res)
	}
	return in, nil
}

// start asks the snapshotter for the artefact. A busy resource stays
// PENDING and is started again at the next check, until BusyLimit; while
// it is pending, the time waited is time busy.
func (t *Tasks) start(ctx context.Context, snap Snapshot, res ResourceProgress, snapshotter Snapshotter, in ArtefactStep) (ArtefactStep, error) {
	data, err := snapshotter.Start(ctx, t.artefactRequest(snap, res))
	var busy *BusyError
	if errors.As(err, &busy) {
		if in.WaitedSeconds < t.BusyLimit {
			return in, nil
		}
		err = &ResourceSnapshotError{Message: fmt.Sprintf("still busy after %s: %s", time.Duration(in.WaitedSeconds)*time.Second, busy.Message)}
	}
	if err != nil {
		return in, t.failResource(ctx, snap, res, err)
	}
	res.State, res.Data = ResourceInProgress, data
	if err := t.Store.SetResource(ctx, snap.Key, res); err != nil {
		return in, fmt.Errorf("record artefact of %s: %w", res.LogicalID, err)
	}
	// The artefact's own clock starts now, whatever the busy time was.
	in.WaitSeconds, in.WaitedSeconds = t.FirstWait, 0
	return in, nil
}

// CheckArtefact asks whether one resource's artefact is ready; a resource
// that was busy at its start is started again.
func (t *Tasks) CheckArtefact(ctx context.Context, in ArtefactStep) (ArtefactStep, error) {
	snap, res, snapshotter, err := t.resource(ctx, in)
	if err != nil {
		return in, err
	}
	in.WaitedSeconds += in.WaitSeconds
	in.WaitSeconds = min(max(in.WaitedSeconds/2, t.FirstWait), t.MaxWait)
	switch res.State {
	case ResourceComplete:
		in.Done = true
		return in, nil
	case ResourceFailed:
		return in, failedAlready(res)
	case ResourcePending:
		return t.start(ctx, snap, res, snapshotter, in)
	}
	progress, err := snapshotter.Check(ctx, t.artefactRequest(snap, res), res.Data)
	var busy *BusyError
	if errors.As(err, &busy) {
		return in, nil // not ready yet: checked again after the wait
	}
	if err != nil {
		return in, t.failResource(ctx, snap, res, err)
	}
	if progress.Data != nil {
		res.Data = progress.Data
	}
	switch {
	case progress.Failure != "":
		return in, t.failResource(ctx, snap, res, &ResourceSnapshotError{Message: progress.Failure})
	case progress.Done:
		res.State = ResourceComplete
		if err := t.Store.SetResource(ctx, snap.Key, res); err != nil {
			return in, fmt.Errorf("record completion of %s: %w", res.LogicalID, err)
		}
		in.Done = true
	}
	return in, nil
}

// failedAlready is the answer to a step run again on a resource whose
// failure is recorded: the failure, again.
func failedAlready(res ResourceProgress) error {
	return &ResourceSnapshotError{Message: describe(res) + ": " + res.Reason}
}

// FailResourceInput is what the Catch inside the state machine's Map hands
// to FailResource: the resource's step and the error that ended it.
type FailResourceInput struct {
	ArtefactStep
	Error TaskError `json:"error"`
}

// FailResource records on the resource why its iteration of the Map ended,
// unless a reason is recorded already. A Distributed Map passes on only
// that an iteration failed; MarkFailed reads the reason from the record.
func (t *Tasks) FailResource(ctx context.Context, in FailResourceInput) (Result, error) {
	snap, err := t.Store.SnapshotResource(ctx, in.Key(), in.LogicalID)
	if err != nil {
		return Result{}, fmt.Errorf("read snapshot: %w", err)
	}
	res, ok := snap.Resources[in.LogicalID]
	if !ok || res.State == ResourceFailed || res.State == ResourceComplete {
		return Result{SnapshotID: in.SnapshotID, Status: StatusFailed}, nil
	}
	res.State, res.Reason = ResourceFailed, failureMessage(in.Error)
	if err := t.Store.SetResource(ctx, snap.Key, res); err != nil && !errors.Is(err, ErrStoreConflict) {
		return Result{}, fmt.Errorf("record failure of %s: %w", res.LogicalID, err)
	}
	return Result{SnapshotID: in.SnapshotID, Status: StatusFailed}, nil
}

// failResource returns the error of a resource's snapshotter as the state
// machine needs it: throttling stays retryable as it is; a permanent
// failure is recorded on the resource (so that the snapshot's reason can
// name it, whatever the state machine passes on) and returned naming it.
func (t *Tasks) failResource(ctx context.Context, snap Snapshot, res ResourceProgress, err error) error {
	var throttled *ThrottlingError
	if errors.As(err, &throttled) {
		return throttled
	}
	var failed *ResourceSnapshotError
	if !errors.As(err, &failed) {
		return err
	}
	res.State, res.Reason = ResourceFailed, failed.Message
	if err := t.Store.SetResource(ctx, snap.Key, res); err != nil {
		return fmt.Errorf("record failure of %s: %w", res.LogicalID, err)
	}
	return &ResourceSnapshotError{Message: describe(res) + ": " + failed.Message}
}

// Finalize writes the stack's dump on the record, marks it COMPLETE and
// frees the stack.
func (t *Tasks) Finalize(ctx context.Context, in WorkflowInput) (Result, error) {
	snap, err := t.Store.Snapshot(ctx, in.Key())
	if err != nil {
		return Result{}, fmt.Errorf("read snapshot: %w", err)
	}
	if snap.Status == StatusInProgress {
		if err := t.complete(ctx, snap); err != nil {
			return Result{}, err
		}
		snap.Status = StatusComplete
	}
	if err := t.release(ctx, snap.Key); err != nil {
		return Result{}, err
	}
	return Result{SnapshotID: snap.SnapshotID, Status: snap.Status}, nil
}

func (t *Tasks) complete(ctx context.Context, snap Snapshot) error {
	for _, res := range snap.Resources {
		if res.State != ResourceComplete && res.State != ResourceNoSnapshot {
			return fmt.Errorf("finalize: resource %s is %s", res.LogicalID, res.State)
		}
	}
	stack, err := t.unchangedStack(ctx, snap)
	if err != nil {
		return err
	}
	def, err := t.Stacks.Definition(ctx, snap.TenantID, stack)
	if err != nil {
		return fmt.Errorf("read stack definition: %w", err)
	}
	template, err := t.ParseTemplate([]byte(def.TemplateBody))
	if err != nil {
		return &StackChangedError{Message: "the stack's template could not be read: " + err.Error()}
	}
	data := buildData(snap.TenantID, stack, def, template, snap.Resources)
	if err := t.Store.Complete(ctx, snap.Key, data, ReasonComplete); err != nil && !errors.Is(err, ErrStoreConflict) {
		return fmt.Errorf("complete snapshot: %w", err)
	}
	return nil
}

// unchangedStack checks, before the stack's template is dumped next to the
// artefacts, that the stack is the one they were made from: at rest, with
// the resources and physical ids of the plan.
func (t *Tasks) unchangedStack(ctx context.Context, snap Snapshot) (Stack, error) {
	stack, err := t.liveStack(ctx, snap)
	if err != nil {
		return Stack{}, err
	}
	if action, busy := busyAction(stack.Status); busy {
		return Stack{}, &StackChangedError{Message: fmt.Sprintf("the stack %s was being changed (%s) during the snapshot", snap.StackName, action)}
	}
	// An update that started before the snapshot would have refused it
	// (409), so an update time after its creation is an update during it,
	// even one that replaced nothing. (CreatedAt has whole seconds.)
	if stack.UpdatedAt.Truncate(time.Second).After(snap.CreatedAt) {
		return Stack{}, &StackChangedError{Message: fmt.Sprintf("the stack %s was updated during the snapshot", snap.StackName)}
	}
	resources, err := t.Stacks.Resources(ctx, snap.TenantID, stack)
	if err != nil {
		return Stack{}, err
	}
	now := make(map[string]string, len(resources))
	for _, r := range resources {
		now[r.LogicalID] = r.PhysicalID
		if _, planned := snap.Resources[r.LogicalID]; !planned {
			return Stack{}, &StackChangedError{Message: fmt.Sprintf("the stack %s changed during the snapshot: %s was added", snap.StackName, r.LogicalID)}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(snap.Resources)) {
		physical, ok := now[id]
		switch {
		case !ok:
			return Stack{}, &StackChangedError{Message: fmt.Sprintf("the stack %s changed during the snapshot: %s was removed", snap.StackName, id)}
		case physical != snap.Resources[id].PhysicalID:
			return Stack{}, &StackChangedError{Message: fmt.Sprintf("the stack %s changed during the snapshot: %s was replaced", snap.StackName, id)}
		}
	}
	return stack, nil
}

// MarkFailed marks the snapshot FAILED and frees the stack. The reason
// names the resource whose artefact failed, as recorded on the snapshot
// (the error the state machine passes on may not say: a Distributed Map
// reports only that an iteration failed); else it is the caught error.
// Artefacts already made stay on the record, so that deleting the snapshot
// removes them.
func (t *Tasks) MarkFailed(ctx context.Context, in FailInput) (Result, error) {
	reason := ReasonFailedPrefix + failureMessage(in.Error)
	if snap, err := t.Store.Snapshot(ctx, in.Key()); err == nil {
		if failed := failedResources(snap); failed != "" {
			reason = ReasonFailedPrefix + failed
		}
	}
	t.Log.WarnContext(ctx, "snapshot failed", "snapshot_id", in.SnapshotID, "stack_id", in.StackID,
		"tenant_id", in.TenantID, "error", in.Error.Error, "cause", in.Error.Cause)
	if err := t.Store.Fail(ctx, in.Key(), reason); err != nil && !errors.Is(err, ErrStoreConflict) {
		return Result{}, fmt.Errorf("fail snapshot: %w", err)
	}
	if err := t.release(ctx, in.Key()); err != nil {
		return Result{}, err
	}
	return Result{SnapshotID: in.SnapshotID, Status: StatusFailed}, nil
}

// failedResources describes the resources whose artefact failed, or "".
func failedResources(snap Snapshot) string {
	var failed []string
	for _, id := range slices.Sorted(maps.Keys(snap.Resources)) {
		if res := snap.Resources[id]; res.State == ResourceFailed {
			failed = append(failed, describe(res)+": "+res.Reason)
		}
	}
	return strings.Join(failed, "; ")
}

// failureMessage turns a caught error into the end of a status_reason. The
// messages of our own error types are written for people; anything else
// is named by its type only, so no internal detail leaks to the tenant.
func failureMessage(e TaskError) string {
	message := e.Cause
	var lambdaErr struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal([]byte(e.Cause), &lambdaErr) == nil && lambdaErr.ErrorMessage != "" {
		message = lambdaErr.ErrorMessage
	}
	switch e.Error {
	case "ResourceSnapshotError", "StackChangedError":
		return message
	case "ThrottlingError":
		return "AWS kept throttling the snapshot: " + message
	case "States.Timeout", "States.HeartbeatTimeout":
		return "a step of the snapshot workflow timed out"
	}
	return fmt.Sprintf("an internal error stopped the snapshot (%s)", e.Error)
}

func (t *Tasks) release(ctx context.Context, key Key) error {
	err := t.Store.Release(ctx, StackKey{TenantID: key.TenantID, StackID: key.StackID}, key.SnapshotID, false)
	if err != nil && !errors.Is(err, ErrStoreConflict) {
		return fmt.Errorf("release stack: %w", err)
	}
	return nil
}

func (t *Tasks) inProgress(ctx context.Context, key Key) (Snapshot, error) {
	snap, err := t.Store.Snapshot(ctx, key)
	if err != nil {
		return Snapshot{}, fmt.Errorf("read snapshot: %w", err)
	}
	return snap, creating(snap)
}

// creating refuses to work on a snapshot that is no longer being created.
func creating(snap Snapshot) error {
	if snap.Status != StatusInProgress || snap.Action != ActionCreate {
		return &StackChangedError{Message: fmt.Sprintf("the snapshot is %s %s, not CREATE IN_PROGRESS", snap.Action, snap.Status)}
	}
	return nil
}

// resource reads the snapshot with the one resource a Map iteration
// works on: the record of a large stack's plan is read once per check of
// each resource, and need not come whole.
func (t *Tasks) resource(ctx context.Context, in ArtefactStep) (Snapshot, ResourceProgress, Snapshotter, error) {
	snap, err := t.Store.SnapshotResource(ctx, in.Key(), in.LogicalID)
	if err != nil {
		return Snapshot{}, ResourceProgress{}, nil, fmt.Errorf("read snapshot: %w", err)
	}
	if err := creating(snap); err != nil {
		return Snapshot{}, ResourceProgress{}, nil, err
	}
	res, ok := snap.Resources[in.LogicalID]
	if !ok {
		return Snapshot{}, ResourceProgress{}, nil, fmt.Errorf("resource %s is not in the plan", in.LogicalID)
	}
	snapshotter, ok := t.Snapshotters[res.Type]
	if !ok {
		return Snapshot{}, ResourceProgress{}, nil, fmt.Errorf("no snapshotter for %s", res.Type)
	}
	return snap, res, snapshotter, nil
}

// liveStack checks that the snapshot's stack is still the one it was.
func (t *Tasks) liveStack(ctx context.Context, snap Snapshot) (Stack, error) {
	stack, err := t.Stacks.Stack(ctx, snap.TenantID, snap.StackName)
	if ErrorCode(err) == CodeStackNotFound || (err == nil && (stack.ID != snap.StackID || deleted(stack.Status))) {
		return Stack{}, &StackChangedError{Message: fmt.Sprintf("the stack %s was deleted during the snapshot", snap.StackName)}
	}
	if err != nil {
		return Stack{}, fmt.Errorf("look up stack: %w", err)
	}
	return stack, nil
}

func (t *Tasks) artefactRequest(snap Snapshot, res ResourceProgress) ArtefactRequest {
	return ArtefactRequest{
		Key:       snap.Key,
		StackName: snap.StackName,
		Resource:  Resource{LogicalID: res.LogicalID, PhysicalID: res.PhysicalID, Type: res.Type},
	}
}

// describe names a resource for a person: "DataVolume (AWS::EC2::Volume vol-0abc)".
func describe(res ResourceProgress) string {
	return fmt.Sprintf("%s (%s %s)", res.LogicalID, res.Type, strings.TrimSpace(res.PhysicalID))
}
