package dynamostore

import (
	"context"
	"testing"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// The benchmarks run against the dynalite of TestMain, so they measure
// dynalite and the loopback as much as the store: compare runs on one
// machine, not with AWS.

// BenchmarkStoreCreateGet writes a snapshot record with a plan and small
// data, and reads it back.
func BenchmarkStoreCreateGet(b *testing.B) {
	s, stack := newStore(), newStack()
	ctx := context.Background()
	for b.Loop() {
		snap := newSnapshot(b, stack)
		snap.Resources, snap.Data = samplePlan(), smallData()
		if err := s.CreateSnapshot(ctx, snap); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Snapshot(ctx, snap.Key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreList32 lists a full stack: 32 COMPLETE snapshots with
// their plans and data.
func BenchmarkStoreList32(b *testing.B) {
	s, stack := newStore(), newStack()
	ctx := context.Background()
	for range snapshot.DefaultSnapshotLimit {
		snap := newSnapshot(b, stack)
		snap.Status, snap.Resources, snap.Data = snapshot.StatusComplete, samplePlan(), smallData()
		mustCreate(b, s, snap)
	}
	for b.Loop() {
		page, err := s.ListSnapshots(ctx, stack, snapshot.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(page.Snapshots) != snapshot.DefaultSnapshotLimit {
			b.Fatalf("listed %d snapshots", len(page.Snapshots))
		}
	}
}

// BenchmarkStoreCompleteChunked completes a snapshot with 3 MB of data that
// does not compress (8 chunks) and reads it back.
func BenchmarkStoreCompleteChunked(b *testing.B) {
	s, stack := newStore(), newStack()
	ctx := context.Background()
	data := largeData(b, 3<<20)
	for b.Loop() {
		snap := newSnapshot(b, stack)
		mustCreate(b, s, snap)
		if err := s.Complete(ctx, snap.Key, *data, snapshot.ReasonComplete); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Snapshot(ctx, snap.Key); err != nil {
			b.Fatal(err)
		}
	}
}
