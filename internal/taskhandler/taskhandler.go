// Package taskhandler is the Lambda adapter of the workflow's tasks: the
// state machine names the task, and this decodes its input and calls it.
package taskhandler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// Event is what every Task state of statemachine/snapshot.asl.json sends.
type Event struct {
	Task  string          `json:"task"`
	Input json.RawMessage `json:"input"`
}

// New returns the function the workflow Lambda runs. The tasks' typed
// errors are returned unwrapped: Lambda reports an error's type name, and
// the state machine retries and catches on it.
func New(tasks *snapshot.Tasks) func(ctx context.Context, ev Event) (any, error) {
	return func(ctx context.Context, ev Event) (any, error) {
		switch ev.Task {
		case "Plan":
			return call(ctx, ev.Input, tasks.Plan)
		case "StartArtefact":
			return call(ctx, ev.Input, tasks.StartArtefact)
		case "CheckArtefact":
			return call(ctx, ev.Input, tasks.CheckArtefact)
		case "Finalize":
			return call(ctx, ev.Input, tasks.Finalize)
		case "FailResource":
			return call(ctx, ev.Input, tasks.FailResource)
		case "MarkFailed":
			return call(ctx, ev.Input, tasks.MarkFailed)
		}
		return nil, fmt.Errorf("unknown task %q", ev.Task)
	}
}

func call[In, Out any](ctx context.Context, raw json.RawMessage, task func(context.Context, In) (Out, error)) (any, error) {
	var in In
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("decode task input: %w", err)
	}
	out, err := task(ctx, in)
	if err != nil {
		return nil, typed(err)
	}
	return out, nil
}

// typed finds the error the state machine routes on inside a wrapped one:
// Lambda names an error by its outermost type, and a *ThrottlingError
// wrapped with context would read as an internal error and not be retried.
func typed(err error) error {
	var throttled *snapshot.ThrottlingError
	var failed *snapshot.ResourceSnapshotError
	var changed *snapshot.StackChangedError
	var busy *snapshot.BusyError
	switch {
	case errors.As(err, &busy):
		return busy
	case errors.As(err, &throttled):
		return throttled
	case errors.As(err, &failed):
		return failed
	case errors.As(err, &changed):
		return changed
	}
	return err
}
