package snapshot

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// clockSnapshotter makes an artefact that is ready once the workflow has
// waited `duration` in total; the loop below moves its clock.
type clockSnapshotter struct {
	waited, duration time.Duration
}

func (c *clockSnapshotter) Start(context.Context, ArtefactRequest) (ResourceData, error) {
	return ResourceData{"snapshot_id": "snap-1"}, nil
}

func (c *clockSnapshotter) Check(context.Context, ArtefactRequest, ResourceData) (Progress, error) {
	return Progress{Done: c.waited >= c.duration}, nil
}

func (c *clockSnapshotter) Delete(context.Context, string, ResourceData) error { return nil }

// Transitions of statemachine/snapshot.asl.json for a stack with one
// snapshot-able resource whose artefact needs `checks` checks: Plan,
// SnapshotResources, StartArtefact, (WaitForArtefact, CheckArtefact,
// IsArtefactReady) per check, ArtefactReady, Finalize. The end-to-end
// tests run the real state machine; this counts what the growing wait
// costs as artefacts get slower, which those tests cannot wait for.
func transitionsFor(checks int) int { return 2 + 1 + 3*checks + 1 + 1 }

// BenchmarkStateTransitions prints how many state transitions (what Step
// Functions bills) one resource's snapshot costs with the deployed waits
// (half the time waited, from 15 s to 1 h), by how long its artefact
// takes, and how late the workflow sees it ready.
func BenchmarkStateTransitions(b *testing.B) {
	for _, d := range []time.Duration{time.Minute, 10 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour} {
		b.Run(fmt.Sprintf("artefact=%s", d), func(b *testing.B) {
			var checks int
			var waited time.Duration
			for b.Loop() {
				checks, waited = countChecks(b, d)
			}
			b.ReportMetric(float64(transitionsFor(checks)), "transitions/snapshot")
			b.ReportMetric(float64(checks), "checks")
			b.ReportMetric(100*float64(waited-d)/float64(d), "%late")
		})
	}
}

func countChecks(b *testing.B, duration time.Duration) (int, time.Duration) {
	ctx := context.Background()
	f := newTasksFixture(&testing.T{})
	f.stacks.resources = map[string][]Resource{stackID: {{LogicalID: "Data", PhysicalID: "vol-1", Type: "AWS::EC2::Volume"}}}
	volume := &clockSnapshotter{duration: duration}
	f.tasks.Snapshotters = Snapshotters{"AWS::EC2::Volume": volume}
	f.tasks.FirstWait, f.tasks.MaxWait = 15, 3600
	if _, err := f.tasks.Plan(ctx, f.input()); err != nil {
		b.Fatal(err)
	}
	step, err := f.tasks.StartArtefact(ctx, ArtefactStep{WorkflowInput: f.input(), LogicalID: "Data"})
	checks := 0
	for err == nil && !step.Done {
		volume.waited += time.Duration(step.WaitSeconds) * time.Second
		step, err = f.tasks.CheckArtefact(ctx, step)
		checks++
	}
	if err != nil {
		b.Fatal(err)
	}
	return checks, volume.waited
}
