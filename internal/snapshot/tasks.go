package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
)

// Tasks are the steps of the snapshot workflow. The state machine calls
// them in order: Plan, then StartArtefact and CheckArtefact for each
// resource that has an artefact, then Finalize; any failure goes to
// MarkFailed. Each step is idempotent, because Step Functions may run a
// task again.
type Tasks struct {
	Store         Store
	Stacks        Stacks
	Snapshotters  Snapshotters
	ParseTemplate func(body []byte) (map[string]any, error)
	// FirstWait and MaxWait bound the wait between checks of an artefact,
	// in seconds. Between them the wait is half the time already waited:
	// an artefact is seen at most 50% of its duration after it is ready
	// (make bench measures it), and the
	// number of checks (state transitions, what Step Functions bills) grows
	// with the logarithm of its duration, not linearly.
	FirstWait int
	MaxWait   int
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
	sort.Strings(out.LogicalIDs)
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
		if _, ok := t.Snapshotters[r.Type]; !ok {
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
	if res.State != ResourcePending {
		return in, nil
	}
	data, err := snapshotter.Start(ctx, t.artefactRequest(snap, res))
	if err != nil {
		return in, t.resourceError(res, err)
	}
	res.State, res.Data = ResourceInProgress, data
	if err := t.Store.SetResource(ctx, snap.Key, res); err != nil {
		return in, fmt.Errorf("record artefact of %s: %w", res.LogicalID, err)
	}
	return in, nil
}

// CheckArtefact asks whether one resource's artefact is ready.
func (t *Tasks) CheckArtefact(ctx context.Context, in ArtefactStep) (ArtefactStep, error) {
	snap, res, snapshotter, err := t.resource(ctx, in)
	if err != nil {
		return in, err
	}
	in.WaitedSeconds += in.WaitSeconds
	if res.State == ResourceComplete {
		in.Done = true
		return in, nil
	}
	progress, err := snapshotter.Check(ctx, t.artefactRequest(snap, res), res.Data)
	if err != nil {
		return in, t.resourceError(res, err)
	}
	if progress.Data != nil {
		res.Data = progress.Data
	}
	switch {
	case progress.Failure != "":
		res.State, res.Reason = ResourceFailed, progress.Failure
		if err := t.Store.SetResource(ctx, snap.Key, res); err != nil {
			return in, fmt.Errorf("record failure of %s: %w", res.LogicalID, err)
		}
		return in, &ResourceSnapshotError{Message: describe(res) + ": " + progress.Failure}
	case progress.Done:
		res.State = ResourceComplete
		if err := t.Store.SetResource(ctx, snap.Key, res); err != nil {
			return in, fmt.Errorf("record completion of %s: %w", res.LogicalID, err)
		}
		in.Done = true
	default:
		in.WaitSeconds = min(max(in.WaitedSeconds/2, t.FirstWait), t.MaxWait)
	}
	return in, nil
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
	stack, err := t.liveStack(ctx, snap)
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

// MarkFailed marks the snapshot FAILED with the reason the workflow caught,
// and frees the stack. Artefacts already made stay on the record, so that
// deleting the snapshot removes them.
func (t *Tasks) MarkFailed(ctx context.Context, in FailInput) (Result, error) {
	reason := ReasonFailedPrefix + failureMessage(in.Error)
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
	if snap.Status != StatusInProgress || snap.Action != ActionCreate {
		return Snapshot{}, &StackChangedError{Message: fmt.Sprintf("the snapshot is %s %s, not CREATE IN_PROGRESS", snap.Action, snap.Status)}
	}
	return snap, nil
}

func (t *Tasks) resource(ctx context.Context, in ArtefactStep) (Snapshot, ResourceProgress, Snapshotter, error) {
	snap, err := t.inProgress(ctx, in.Key())
	if err != nil {
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

// resourceError keeps throttling retryable and names the resource in any
// permanent error a snapshotter reports.
func (t *Tasks) resourceError(res ResourceProgress, err error) error {
	var throttled *ThrottlingError
	if errors.As(err, &throttled) {
		return throttled
	}
	var failed *ResourceSnapshotError
	if errors.As(err, &failed) {
		return &ResourceSnapshotError{Message: describe(res) + ": " + failed.Message}
	}
	return err
}

// describe names a resource for a person: "DataVolume (AWS::EC2::Volume vol-0abc)".
func describe(res ResourceProgress) string {
	return fmt.Sprintf("%s (%s %s)", res.LogicalID, res.Type, strings.TrimSpace(res.PhysicalID))
}
