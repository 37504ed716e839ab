package snapshot

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"
)

// memStore is an in-memory Store with the same conditions as the real one.
type memStore struct {
	mu     sync.Mutex
	stacks map[StackKey]StackRecord
	snaps  map[Key]Snapshot
	// failCreate makes CreateSnapshot fail, as a lost write would.
	failCreate error
}

func newMemStore() *memStore {
	return &memStore{stacks: map[StackKey]StackRecord{}, snaps: map[Key]Snapshot{}}
}

func (m *memStore) Reserve(_ context.Context, rec StackRecord, lock Lock, limit int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.stacks[rec.StackKey]
	if !ok {
		cur = rec
	}
	if cur.Lock != nil || (limit >= 0 && cur.SnapshotCount >= limit) {
		return ErrStoreConflict
	}
	cur.SnapshotCount++
	l := lock
	cur.Lock = &l
	m.stacks[rec.StackKey] = cur
	return nil
}

func (m *memStore) StackRecord(_ context.Context, key StackKey) (StackRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.stacks[key]
	if !ok {
		return StackRecord{}, ErrStoreNotFound
	}
	return rec, nil
}

func (m *memStore) Release(_ context.Context, key StackKey, snapshotID string, uncount bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.stacks[key]
	if !ok || rec.Lock == nil || rec.Lock.SnapshotID != snapshotID {
		return ErrStoreConflict
	}
	rec.Lock = nil
	if uncount {
		rec.SnapshotCount--
	}
	m.stacks[key] = rec
	return nil
}

func (m *memStore) CreateSnapshot(_ context.Context, s Snapshot) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failCreate != nil {
		return m.failCreate
	}
	if _, ok := m.snaps[s.Key]; ok {
		return ErrStoreConflict
	}
	m.snaps[s.Key] = clone(s)
	return nil
}

func (m *memStore) Snapshot(_ context.Context, key Key) (Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.snaps[key]
	if !ok {
		return Snapshot{}, ErrStoreNotFound
	}
	return clone(s), nil
}

func (m *memStore) SnapshotResource(ctx context.Context, key Key, logicalID string) (Snapshot, error) {
	snap, err := m.Snapshot(ctx, key)
	if err != nil {
		return Snapshot{}, err
	}
	one := map[string]ResourceProgress{}
	if res, ok := snap.Resources[logicalID]; ok {
		one[logicalID] = res
	}
	snap.Resources, snap.Data = one, nil
	return snap, nil
}

func (m *memStore) FindSnapshot(_ context.Context, id string) (Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.snaps {
		if k.SnapshotID == id {
			return k, nil
		}
	}
	return Key{}, ErrStoreNotFound
}

func (m *memStore) ListSnapshots(_ context.Context, key StackKey, opts ListOptions) (SnapshotPage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var all []Snapshot
	for k, s := range m.snaps {
		if k.TenantID == key.TenantID && k.StackID == key.StackID && (opts.Status == "" || s.Status == opts.Status) {
			all = append(all, clone(s))
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].SnapshotID > all[j].SnapshotID })
	return SnapshotPage{Snapshots: all}, nil
}

// update applies f to an IN_PROGRESS CREATE snapshot, as the real store's
// conditions do.
func (m *memStore) update(key Key, f func(*Snapshot)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.snaps[key]
	if !ok || s.Status != StatusInProgress || s.Action != ActionCreate {
		return ErrStoreConflict
	}
	f(&s)
	m.snaps[key] = clone(s)
	return nil
}

func (m *memStore) SetPlan(_ context.Context, key Key, plan map[string]ResourceProgress) error {
	return m.update(key, func(s *Snapshot) { s.Resources = plan })
}

// SetResource also writes on a FAILED snapshot, so that an artefact that
// a late task made is still recorded.
func (m *memStore) SetResource(_ context.Context, key Key, p ResourceProgress) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.snaps[key]
	if !ok || s.Action != ActionCreate || s.Status == StatusComplete {
		return ErrStoreConflict
	}
	s.Resources[p.LogicalID] = p
	m.snaps[key] = clone(s)
	return nil
}

func (m *memStore) Complete(_ context.Context, key Key, data StackData, reason string) error {
	return m.update(key, func(s *Snapshot) { s.Status, s.StatusReason, s.Data = StatusComplete, &reason, &data })
}

func (m *memStore) Fail(_ context.Context, key Key, reason string) error {
	return m.update(key, func(s *Snapshot) { s.Status, s.StatusReason = StatusFailed, &reason })
}

// clone deep-copies a snapshot through JSON, so that callers cannot
// change what the store holds.
func clone(s Snapshot) Snapshot {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	var c Snapshot
	if err := json.Unmarshal(b, &c); err != nil {
		panic(err)
	}
	return c
}

// fakeStacks is a CloudFormation of named stacks.
type fakeStacks struct {
	stacks    map[string]Stack // by tenant/name
	resources map[string][]Resource
	defs      map[string]Definition
	err       error
}

func (f *fakeStacks) Stack(_ context.Context, tenant, name string) (Stack, error) {
	if f.err != nil {
		return Stack{}, f.err
	}
	s, ok := f.stacks[tenant+"/"+name]
	if !ok {
		return Stack{}, Errorf(CodeStackNotFound, "The Stack (%s) could not be found.", name)
	}
	return s, nil
}

func (f *fakeStacks) Resources(_ context.Context, _ string, s Stack) ([]Resource, error) {
	return f.resources[s.ID], nil
}

func (f *fakeStacks) Definition(_ context.Context, _ string, s Stack) (Definition, error) {
	return f.defs[s.ID], nil
}

// fakeWorkflows records starts and reports a fixed state.
type fakeWorkflows struct {
	started  []WorkflowInput
	startErr error
	state    ExecutionState
	detail   string
}

func (f *fakeWorkflows) Start(_ context.Context, in WorkflowInput) error {
	if f.startErr != nil {
		return f.startErr
	}
	f.started = append(f.started, in)
	return nil
}

func (f *fakeWorkflows) State(context.Context, string) (ExecutionState, string, error) {
	return f.state, f.detail, nil
}

// fakeSnapshotter makes one artefact per request, done after checks
// reach doneAfter, failing with failure, or throttled throttle times.
type fakeSnapshotter struct {
	starts    int
	checks    int
	doneAfter int
	failure   string
	throttle  int
	busy      int
	checkBusy int
	startErr  error
}

func (f *fakeSnapshotter) Start(_ context.Context, req ArtefactRequest) (ResourceData, error) {
	if f.throttle > 0 {
		f.throttle--
		return nil, &ThrottlingError{Message: "Rate exceeded"}
	}
	if f.busy > 0 {
		f.busy--
		return nil, &BusyError{Message: "InvalidDBInstanceState: the instance is backing up"}
	}
	if f.startErr != nil {
		return nil, f.startErr
	}
	f.starts++
	return ResourceData{"snapshot_id": fmt.Sprintf("snap-%s", req.Resource.LogicalID)}, nil
}

func (f *fakeSnapshotter) Check(_ context.Context, _ ArtefactRequest, data ResourceData) (Progress, error) {
	if f.checkBusy > 0 {
		f.checkBusy--
		return Progress{}, &BusyError{Message: "InvalidDBSnapshotState: the snapshot is being copied"}
	}
	f.checks++
	if f.failure != "" {
		return Progress{Failure: f.failure}, nil
	}
	if f.checks < f.doneAfter {
		return Progress{}, nil
	}
	// A ready artefact reports more ids than its start knew.
	return Progress{Done: true, Data: ResourceData{"snapshot_id": data["snapshot_id"], "checked": "yes"}}, nil
}

func (f *fakeSnapshotter) Delete(context.Context, string, ResourceData) error { return nil }

// fixedClock is a clock tests move by hand.
type fixedClock struct{ t time.Time }

func (c *fixedClock) now() time.Time { return c.t }
