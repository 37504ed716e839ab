package dynamostore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/stacksnap/stacksnap/internal/localaws"
	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// The tests share one in-memory dynalite and one table; each test works
// under a tenant of its own.

const testTable = "stacksnap-test"

var testClient *dynamodb.Client

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	ctx := context.Background()
	db, err := localaws.StartDynalite(ctx, localaws.DynaliteOptions{Stderr: os.Stderr})
	if err != nil {
		// A failure, not a skip: these are the store's only tests.
		fmt.Fprintf(os.Stderr, "FAIL: the dynamostore tests need dynalite: %v\n", err)
		return 1
	}
	defer db.Stop()
	testClient = localaws.DynamoDBClient(db.Endpoint)
	if err := CreateTable(ctx, testClient, testTable); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	return m.Run()
}

func newStore() *Store { return New(testClient, testTable) }

// newStack returns the key of a stack no other test uses.
func newStack() snapshot.StackKey {
	return snapshot.StackKey{TenantID: "tenant-" + uuid.NewString(), StackID: uuid.NewString()}
}

func stackRecord(key snapshot.StackKey) snapshot.StackRecord {
	return snapshot.StackRecord{
		StackKey:  key,
		StackName: "web",
		StackARN:  "arn:aws:cloudformation:us-east-1:123456789012:stack/web/" + key.StackID,
	}
}

func newSnapshotID(t testing.TB) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

var testNow = time.Date(2025, 3, 1, 12, 30, 45, 0, time.UTC)

func lockFor(id string) snapshot.Lock {
	return snapshot.Lock{SnapshotID: id, Action: snapshot.LockSnapshot, Since: testNow}
}

// newSnapshot returns an IN_PROGRESS snapshot record of stack, not yet stored.
func newSnapshot(t testing.TB, stack snapshot.StackKey) snapshot.Snapshot {
	t.Helper()
	return snapshot.Snapshot{
		Key:       snapshot.Key{TenantID: stack.TenantID, StackID: stack.StackID, SnapshotID: newSnapshotID(t)},
		StackName: "web",
		StackARN:  "arn:aws:cloudformation:us-east-1:123456789012:stack/web/" + stack.StackID,
		Action:    snapshot.ActionCreate,
		Status:    snapshot.StatusInProgress,
		CreatedAt: testNow,
	}
}

func mustCreate(t testing.TB, s *Store, snap snapshot.Snapshot) {
	t.Helper()
	if err := s.CreateSnapshot(context.Background(), snap); err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
}

func mustReserve(t testing.TB, s *Store, key snapshot.StackKey, id string, limit int) {
	t.Helper()
	if err := s.Reserve(context.Background(), stackRecord(key), lockFor(id), limit); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
}

func mustRelease(t testing.TB, s *Store, key snapshot.StackKey, id string, uncount bool) {
	t.Helper()
	if err := s.Release(context.Background(), key, id, uncount); err != nil {
		t.Fatalf("Release: %v", err)
	}
}

// assertErr checks err against a sentinel (nil: no error) and, when msg is
// set, its full message.
func assertErr(t *testing.T, err, want error, msg string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("err = %v, want none", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	if msg != "" && err.Error() != msg {
		t.Errorf("message = %q, want %q", err.Error(), msg)
	}
}

func readStack(t *testing.T, s *Store, key snapshot.StackKey) snapshot.StackRecord {
	t.Helper()
	rec, err := s.StackRecord(context.Background(), key)
	if err != nil {
		t.Fatalf("StackRecord: %v", err)
	}
	return rec
}

func readSnapshot(t *testing.T, s *Store, key snapshot.Key) snapshot.Snapshot {
	t.Helper()
	snap, err := s.Snapshot(context.Background(), key)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return snap
}

// rawItem reads an item as stored, to see how the store laid it out.
func rawItem(t *testing.T, pk, sk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := testClient.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(testTable), Key: itemKey(pk, sk), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("GetItem: %v", err)
	}
	return out.Item
}

func TestReserve(t *testing.T) {
	const other = "0190a000-0000-7000-8000-000000000000"
	tests := []struct {
		name      string
		setup     func(t *testing.T, s *Store, key snapshot.StackKey) // stack state before Reserve
		limit     int
		wantErr   error
		wantCount int  // after Reserve
		wantMine  bool // our snapshot holds the lock after Reserve
	}{
		{
			name:      "OK on a new stack",
			setup:     func(*testing.T, *Store, snapshot.StackKey) {},
			limit:     snapshot.DefaultSnapshotLimit,
			wantCount: 1,
			wantMine:  true,
		},
		{
			name: "OK under the limit",
			setup: func(t *testing.T, s *Store, key snapshot.StackKey) {
				for range 2 {
					mustReserve(t, s, key, other, 3)
					mustRelease(t, s, key, other, false)
				}
			},
			limit:     3,
			wantCount: 3,
			wantMine:  true,
		},
		{
			name: "ErrStoreConflict when locked",
			setup: func(t *testing.T, s *Store, key snapshot.StackKey) {
				mustReserve(t, s, key, other, 3)
			},
			limit:     3,
			wantErr:   snapshot.ErrStoreConflict,
			wantCount: 1,
		},
		{
			name: "ErrStoreConflict at the limit",
			setup: func(t *testing.T, s *Store, key snapshot.StackKey) {
				for range 3 {
					mustReserve(t, s, key, other, 3)
					mustRelease(t, s, key, other, false)
				}
			},
			limit:     3,
			wantErr:   snapshot.ErrStoreConflict,
			wantCount: 3,
		},
		{
			name: "OK over any count with limit -1",
			setup: func(t *testing.T, s *Store, key snapshot.StackKey) {
				for range 5 {
					mustReserve(t, s, key, other, -1)
					mustRelease(t, s, key, other, false)
				}
			},
			limit:     -1,
			wantCount: 6,
			wantMine:  true,
		},
		{
			name: "ErrStoreConflict with limit 0 on a stack with a record",
			setup: func(t *testing.T, s *Store, key snapshot.StackKey) {
				mustReserve(t, s, key, other, 1)
				mustRelease(t, s, key, other, true)
			},
			limit:     0,
			wantErr:   snapshot.ErrStoreConflict,
			wantCount: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, key := newStore(), newStack()
			tt.setup(t, s, key)
			mine := newSnapshotID(t)
			err := s.Reserve(context.Background(), stackRecord(key), lockFor(mine), tt.limit)
			assertErr(t, err, tt.wantErr, "")
			if tt.wantErr != nil {
				want := fmt.Sprintf("dynamostore: reserve stack %s: write condition failed", key.StackID)
				assertErr(t, err, tt.wantErr, want)
			}
			rec := readStack(t, s, key)
			if rec.SnapshotCount != tt.wantCount {
				t.Errorf("count = %d, want %d", rec.SnapshotCount, tt.wantCount)
			}
			if got := rec.Lock != nil && rec.Lock.SnapshotID == mine; got != tt.wantMine {
				t.Errorf("lock = %+v, want ours: %v", rec.Lock, tt.wantMine)
			}
		})
	}
}

func TestReserveWritesStackRecord(t *testing.T) {
	s, key := newStore(), newStack()
	id := newSnapshotID(t)
	mustReserve(t, s, key, id, 1)

	want := stackRecord(key)
	want.SnapshotCount = 1
	want.Lock = &snapshot.Lock{SnapshotID: id, Action: snapshot.LockSnapshot, Since: testNow}
	if got := readStack(t, s, key); !reflect.DeepEqual(got, want) {
		t.Errorf("record = %+v\nwant     %+v", got, want)
	}
}

func TestReserveWithLimitZeroOnNewStack(t *testing.T) {
	s, key := newStore(), newStack()
	err := s.Reserve(context.Background(), stackRecord(key), lockFor(newSnapshotID(t)), 0)
	assertErr(t, err, snapshot.ErrStoreConflict, "")
	_, err = s.StackRecord(context.Background(), key)
	assertErr(t, err, snapshot.ErrStoreNotFound, fmt.Sprintf("dynamostore: stack %s: record not found", key.StackID))
}

func TestRelease(t *testing.T) {
	tests := []struct {
		name      string
		holder    bool // the releasing snapshot is the one that reserved
		uncount   bool
		wantErr   error
		wantCount int
		wantLock  bool
	}{
		{name: "OK keeps the count", holder: true, wantCount: 1},
		{name: "OK with uncount gives the place back", holder: true, uncount: true, wantCount: 0},
		{name: "ErrStoreConflict for a snapshot not holding the lock", wantErr: snapshot.ErrStoreConflict, wantCount: 1, wantLock: true},
		{name: "ErrStoreConflict for a non-holder with uncount", uncount: true, wantErr: snapshot.ErrStoreConflict, wantCount: 1, wantLock: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, key := newStore(), newStack()
			holder := newSnapshotID(t)
			mustReserve(t, s, key, holder, 5)
			releaser := holder
			if !tt.holder {
				releaser = newSnapshotID(t)
			}
			err := s.Release(context.Background(), key, releaser, tt.uncount)
			if tt.wantErr != nil {
				assertErr(t, err, tt.wantErr, fmt.Sprintf("dynamostore: release stack %s: write condition failed", key.StackID))
			} else {
				assertErr(t, err, nil, "")
			}
			rec := readStack(t, s, key)
			if rec.SnapshotCount != tt.wantCount {
				t.Errorf("count = %d, want %d", rec.SnapshotCount, tt.wantCount)
			}
			if (rec.Lock != nil) != tt.wantLock {
				t.Errorf("lock = %+v, want locked: %v", rec.Lock, tt.wantLock)
			}
		})
	}
}

func TestReleaseTwice(t *testing.T) {
	s, key := newStore(), newStack()
	id := newSnapshotID(t)
	mustReserve(t, s, key, id, 5)
	mustRelease(t, s, key, id, true)
	err := s.Release(context.Background(), key, id, true)
	assertErr(t, err, snapshot.ErrStoreConflict, "")
	if rec := readStack(t, s, key); rec.SnapshotCount != 0 {
		t.Errorf("count = %d after a repeated release, want 0", rec.SnapshotCount)
	}
}

func TestReleaseMissingStack(t *testing.T) {
	s, key := newStore(), newStack()
	err := s.Release(context.Background(), key, newSnapshotID(t), false)
	assertErr(t, err, snapshot.ErrStoreConflict, "")
	_, err = s.StackRecord(context.Background(), key)
	assertErr(t, err, snapshot.ErrStoreNotFound, "")
}

func TestReserveRace(t *testing.T) {
	s, key := newStore(), newStack()
	const racers = 20
	var wins, conflicts atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range racers {
		id := newSnapshotID(t)
		wg.Go(func() {
			<-start
			err := s.Reserve(context.Background(), stackRecord(key), lockFor(id), snapshot.DefaultSnapshotLimit)
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, snapshot.ErrStoreConflict):
				conflicts.Add(1)
			default:
				t.Errorf("Reserve: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 || conflicts.Load() != racers-1 {
		t.Errorf("wins = %d, conflicts = %d; want 1 and %d", wins.Load(), conflicts.Load(), racers-1)
	}
	if rec := readStack(t, s, key); rec.SnapshotCount != 1 {
		t.Errorf("count = %d, want 1", rec.SnapshotCount)
	}
}

// Many callers each try until they get a place or the stack is full; the
// limit holds however their reserves and releases interleave.
func TestReserveLimitUnderContention(t *testing.T) {
	s, key := newStore(), newStack()
	const callers, limit = 50, 10
	ctx := context.Background()
	var wins atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range callers {
		snap := newSnapshot(t, key)
		wg.Go(func() {
			<-start
			for {
				err := s.Reserve(ctx, stackRecord(key), lockFor(snap.SnapshotID), limit)
				if err == nil {
					break
				}
				if !errors.Is(err, snapshot.ErrStoreConflict) {
					t.Errorf("Reserve: %v", err)
					return
				}
				rec, err := s.StackRecord(ctx, key)
				if err != nil {
					t.Errorf("StackRecord: %v", err)
					return
				}
				if rec.SnapshotCount >= limit {
					return // full: this caller gets no place
				}
				// Locked: try again after a while, so that the holder's
				// release is not stuck behind everyone's retries.
				time.Sleep(time.Duration(2+mathrand.IntN(8)) * time.Millisecond)
			}
			if err := s.CreateSnapshot(ctx, snap); err != nil {
				t.Errorf("CreateSnapshot: %v", err)
			}
			if err := s.Release(ctx, key, snap.SnapshotID, false); err != nil {
				t.Errorf("Release: %v", err)
			}
			wins.Add(1)
		})
	}
	close(start)
	wg.Wait()

	if wins.Load() != limit {
		t.Errorf("%d callers got a place, want %d", wins.Load(), limit)
	}
	rec := readStack(t, s, key)
	if rec.SnapshotCount != limit || rec.Lock != nil {
		t.Errorf("record = count %d, lock %+v; want count %d, unlocked", rec.SnapshotCount, rec.Lock, limit)
	}
	page, err := s.ListSnapshots(ctx, key, snapshot.ListOptions{})
	if err != nil {
		t.Fatalf("ListSnapshots: %v", err)
	}
	if len(page.Snapshots) != limit {
		t.Errorf("%d snapshot records, want %d", len(page.Snapshots), limit)
	}
}

func TestCreateSnapshotTwice(t *testing.T) {
	tests := []struct {
		name string
		data *snapshot.StackData
	}{
		{name: "ErrStoreConflict without data"},
		{name: "ErrStoreConflict with chunked data", data: largeData(t, 1<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore()
			first := newSnapshot(t, newStack())
			first.Data = tt.data
			mustCreate(t, s, first)

			second := first
			second.Status = snapshot.StatusFailed
			if tt.data != nil {
				second.Data = largeData(t, 1<<20)
			}
			err := s.CreateSnapshot(context.Background(), second)
			assertErr(t, err, snapshot.ErrStoreConflict,
				fmt.Sprintf("dynamostore: create snapshot %s: write condition failed", first.SnapshotID))
			if got := readSnapshot(t, s, first.Key); !reflect.DeepEqual(got, first) {
				t.Errorf("the first record changed: status %s, data equal: %v", got.Status, reflect.DeepEqual(got.Data, first.Data))
			}
		})
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	name, reason := "before upgrade", "Stack SNAPSHOT completed successfully"
	empty := ""
	tests := []struct {
		name   string
		modify func(*snapshot.Snapshot)
	}{
		{name: "OK minimal", modify: func(*snapshot.Snapshot) {}},
		{name: "OK with name and reason", modify: func(s *snapshot.Snapshot) {
			s.Name, s.StatusReason = &name, &reason
		}},
		{name: "OK with empty name", modify: func(s *snapshot.Snapshot) { s.Name = &empty }},
		{name: "OK with resources and data", modify: func(s *snapshot.Snapshot) {
			s.Status = snapshot.StatusComplete
			s.Resources = samplePlan()
			s.Data = smallData()
		}},
		{name: "OK with a DELETE action", modify: func(s *snapshot.Snapshot) {
			s.Action, s.StatusReason = snapshot.ActionDelete, &empty
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore()
			snap := newSnapshot(t, newStack())
			tt.modify(&snap)
			mustCreate(t, s, snap)
			if got := readSnapshot(t, s, snap.Key); !reflect.DeepEqual(got, snap) {
				t.Errorf("read back\n%+v\nwant\n%+v", got, snap)
			}
		})
	}
}

func TestSnapshotTimesAreUTCSeconds(t *testing.T) {
	s := newStore()
	snap := newSnapshot(t, newStack())
	snap.CreatedAt = time.Date(2025, 3, 1, 14, 30, 45, 999_000_000, time.FixedZone("CET", 3600))
	mustCreate(t, s, snap)

	got := readSnapshot(t, s, snap.Key).CreatedAt
	if want := time.Date(2025, 3, 1, 13, 30, 45, 0, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("CreatedAt = %v, want %v", got, want)
	}
	item := rawItem(t, snapshotPK(snap.Key), snapshotSK(snap.SnapshotID))
	if s := item["created_at"].(*types.AttributeValueMemberS).Value; s != "2025-03-01T13:30:45Z" {
		t.Errorf("created_at stored as %q", s)
	}
}

func TestSnapshotNotFound(t *testing.T) {
	s := newStore()
	key := newSnapshot(t, newStack()).Key
	_, err := s.Snapshot(context.Background(), key)
	assertErr(t, err, snapshot.ErrStoreNotFound, fmt.Sprintf("dynamostore: snapshot %s: record not found", key.SnapshotID))
}

func TestFindSnapshot(t *testing.T) {
	s := newStore()
	snap := newSnapshot(t, newStack())
	mustCreate(t, s, snap)
	tests := []struct {
		name    string
		id      string
		want    snapshot.Key
		wantErr error
	}{
		{name: "OK", id: snap.SnapshotID, want: snap.Key},
		{name: "ErrStoreNotFound", id: newSnapshotID(t), wantErr: snapshot.ErrStoreNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.FindSnapshot(context.Background(), tt.id)
			assertErr(t, err, tt.wantErr, "")
			if got != tt.want {
				t.Errorf("key = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestListSnapshots(t *testing.T) {
	s, key := newStore(), newStack()
	// ids[0] is the oldest; statuses alternate, newest first: F C F C F C.
	var ids []string
	for i := range 6 {
		snap := newSnapshot(t, key)
		if i%2 == 0 {
			snap.Status = snapshot.StatusComplete
			snap.Data = smallData()
		} else {
			snap.Status = snapshot.StatusFailed
		}
		mustCreate(t, s, snap)
		ids = append(ids, snap.SnapshotID)
	}
	// A snapshot of another stack of the same tenant is not listed.
	mustCreate(t, s, newSnapshot(t, snapshot.StackKey{TenantID: key.TenantID, StackID: uuid.NewString()}))
	// Nor is the stack record in the same partition.
	mustReserve(t, s, key, newSnapshotID(t), -1)

	tests := []struct {
		name string
		opts snapshot.ListOptions
		want []string
	}{
		{name: "OK all newest first", want: []string{ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{name: "OK with limit", opts: snapshot.ListOptions{Limit: 2}, want: []string{ids[5], ids[4]}},
		{name: "OK after marker", opts: snapshot.ListOptions{Marker: ids[3]}, want: []string{ids[2], ids[1], ids[0]}},
		{name: "OK after marker with limit", opts: snapshot.ListOptions{Marker: ids[4], Limit: 2}, want: []string{ids[3], ids[2]}},
		{name: "OK after the oldest is empty", opts: snapshot.ListOptions{Marker: ids[0]}, want: []string{}},
		{name: "OK by status", opts: snapshot.ListOptions{Status: snapshot.StatusComplete}, want: []string{ids[4], ids[2], ids[0]}},
		{name: "OK by status with limit", opts: snapshot.ListOptions{Status: snapshot.StatusFailed, Limit: 2}, want: []string{ids[5], ids[3]}},
		{name: "OK by status after marker", opts: snapshot.ListOptions{Status: snapshot.StatusFailed, Marker: ids[5], Limit: 1}, want: []string{ids[3]}},
		{name: "OK by a status none has", opts: snapshot.ListOptions{Status: snapshot.StatusInProgress}, want: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := s.ListSnapshots(context.Background(), key, tt.opts)
			if err != nil {
				t.Fatalf("ListSnapshots: %v", err)
			}
			got := []string{}
			for _, snap := range page.Snapshots {
				got = append(got, snap.SnapshotID)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ids = %v\nwant  %v", got, tt.want)
			}
		})
	}
}

func TestListSnapshotsReturnsData(t *testing.T) {
	s, key := newStore(), newStack()
	inline, chunked := newSnapshot(t, key), newSnapshot(t, key)
	inline.Data, chunked.Data = smallData(), largeData(t, 1<<20)
	mustCreate(t, s, inline)
	mustCreate(t, s, chunked)

	page, err := s.ListSnapshots(context.Background(), key, snapshot.ListOptions{})
	if err != nil {
		t.Fatalf("ListSnapshots: %v", err)
	}
	if want := []snapshot.Snapshot{chunked, inline}; !reflect.DeepEqual(page.Snapshots, want) {
		t.Errorf("listed snapshots differ from the stored ones")
	}
}

// countingAPI counts the Queries the store makes.
type countingAPI struct {
	API
	queries atomic.Int32
}

func (c *countingAPI) Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.queries.Add(1)
	return c.API.Query(ctx, in, optFns...)
}

// A Query page holds at most 1 MB, so records with large inline data make
// the filtered listing page; it must go on until it has Limit matches.
func TestListSnapshotsFilterAcrossPages(t *testing.T) {
	api := &countingAPI{API: testClient}
	s, key := New(api, testTable), newStack()
	var complete []string // newest first
	for i := range 16 {
		snap := newSnapshot(t, key)
		snap.Status = snapshot.StatusFailed
		if i%4 == 0 {
			snap.Status = snapshot.StatusComplete
			complete = append([]string{snap.SnapshotID}, complete...)
		}
		snap.Data = largeData(t, 200<<10) // about 150 KB compressed: inline
		mustCreate(t, s, snap)
	}

	api.queries.Store(0)
	page, err := s.ListSnapshots(context.Background(), key, snapshot.ListOptions{Status: snapshot.StatusComplete, Limit: 3})
	if err != nil {
		t.Fatalf("ListSnapshots: %v", err)
	}
	var got []string
	for _, snap := range page.Snapshots {
		got = append(got, snap.SnapshotID)
	}
	if want := complete[:3]; !reflect.DeepEqual(got, want) {
		t.Errorf("ids = %v\nwant  %v", got, want)
	}
	if n := api.queries.Load(); n < 2 {
		t.Errorf("%d Query calls: the listing did not span pages, so the test shows nothing", n)
	}
}

func TestTransitions(t *testing.T) {
	plan := samplePlan()
	ctx := context.Background()
	setPlan := func(s *Store, k snapshot.Key) error { return s.SetPlan(ctx, k, plan) }
	setResource := func(s *Store, k snapshot.Key) error {
		return s.SetResource(ctx, k, snapshot.ResourceProgress{LogicalID: "Volume", PhysicalID: "vol-1", Type: "AWS::EC2::Volume",
			State: snapshot.ResourceComplete, Data: snapshot.ResourceData{"snapshot_id": "snap-1"}})
	}
	complete := func(s *Store, k snapshot.Key) error { return s.Complete(ctx, k, *smallData(), snapshot.ReasonComplete) }
	completeLarge := func(s *Store, k snapshot.Key) error {
		return s.Complete(ctx, k, *largeData(t, 1<<20), snapshot.ReasonComplete)
	}
	fail := func(s *Store, k snapshot.Key) error { return s.Fail(ctx, k, "Resource SNAPSHOT failed: boom") }

	type step func(*Store, snapshot.Key) error
	tests := []struct {
		name       string
		action     snapshot.Action // of the stored record; "" means no record
		before     []step          // must succeed
		step       step
		wantErr    error
		wantStatus snapshot.Status
	}{
		{name: "OK set plan", action: snapshot.ActionCreate, step: setPlan, wantStatus: snapshot.StatusInProgress},
		{name: "OK set resource", action: snapshot.ActionCreate, before: []step{setPlan}, step: setResource, wantStatus: snapshot.StatusInProgress},
		{name: "OK complete", action: snapshot.ActionCreate, before: []step{setPlan, setResource}, step: complete, wantStatus: snapshot.StatusComplete},
		{name: "OK complete with chunked data", action: snapshot.ActionCreate, step: completeLarge, wantStatus: snapshot.StatusComplete},
		{name: "OK fail", action: snapshot.ActionCreate, before: []step{setPlan}, step: fail, wantStatus: snapshot.StatusFailed},
		{name: "ErrStoreConflict failing a COMPLETE snapshot", action: snapshot.ActionCreate, before: []step{complete}, step: fail, wantErr: snapshot.ErrStoreConflict, wantStatus: snapshot.StatusComplete},
		{name: "ErrStoreConflict completing a FAILED snapshot", action: snapshot.ActionCreate, before: []step{fail}, step: complete, wantErr: snapshot.ErrStoreConflict, wantStatus: snapshot.StatusFailed},
		{name: "ErrStoreConflict completing twice with chunked data", action: snapshot.ActionCreate, before: []step{completeLarge}, step: completeLarge, wantErr: snapshot.ErrStoreConflict, wantStatus: snapshot.StatusComplete},
		{name: "ErrStoreConflict setting a resource of a COMPLETE snapshot", action: snapshot.ActionCreate, before: []step{complete}, step: setResource, wantErr: snapshot.ErrStoreConflict, wantStatus: snapshot.StatusComplete},
		{name: "OK set resource of a FAILED snapshot", action: snapshot.ActionCreate, before: []step{setPlan, fail}, step: setResource, wantStatus: snapshot.StatusFailed},
		{name: "ErrStoreConflict setting a resource of a snapshot being deleted", action: snapshot.ActionDelete, step: setResource, wantErr: snapshot.ErrStoreConflict, wantStatus: snapshot.StatusInProgress},
		{name: "ErrStoreConflict setting the plan of a FAILED snapshot", action: snapshot.ActionCreate, before: []step{fail}, step: setPlan, wantErr: snapshot.ErrStoreConflict, wantStatus: snapshot.StatusFailed},
		{name: "ErrStoreConflict completing a snapshot being deleted", action: snapshot.ActionDelete, step: complete, wantErr: snapshot.ErrStoreConflict, wantStatus: snapshot.StatusInProgress},
		{name: "ErrStoreConflict failing a snapshot being deleted", action: snapshot.ActionDelete, step: fail, wantErr: snapshot.ErrStoreConflict, wantStatus: snapshot.StatusInProgress},
		{name: "ErrStoreConflict setting the plan of a missing snapshot", step: setPlan, wantErr: snapshot.ErrStoreConflict},
		{name: "ErrStoreConflict setting a resource of a missing snapshot", step: setResource, wantErr: snapshot.ErrStoreConflict},
		{name: "ErrStoreConflict completing a missing snapshot", step: complete, wantErr: snapshot.ErrStoreConflict},
		{name: "ErrStoreConflict completing a missing snapshot with chunked data", step: completeLarge, wantErr: snapshot.ErrStoreConflict},
		{name: "ErrStoreConflict failing a missing snapshot", step: fail, wantErr: snapshot.ErrStoreConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore()
			snap := newSnapshot(t, newStack())
			if tt.action != "" {
				snap.Action = tt.action
				mustCreate(t, s, snap)
			}
			for _, before := range tt.before {
				if err := before(s, snap.Key); err != nil {
					t.Fatalf("before: %v", err)
				}
			}
			var stored snapshot.Snapshot
			if tt.action != "" {
				stored = readSnapshot(t, s, snap.Key)
			}

			err := tt.step(s, snap.Key)
			assertErr(t, err, tt.wantErr, "")

			got, err := s.Snapshot(context.Background(), snap.Key)
			if tt.action == "" {
				assertErr(t, err, snapshot.ErrStoreNotFound, "")
				return
			}
			if err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			if got.Status != tt.wantStatus {
				t.Errorf("status = %s, want %s", got.Status, tt.wantStatus)
			}
			if tt.wantErr != nil && !reflect.DeepEqual(got, stored) {
				t.Errorf("a failed step changed the record")
			}
		})
	}
}

func TestTransitionsWriteTheirFields(t *testing.T) {
	ctx := context.Background()
	s := newStore()
	snap := newSnapshot(t, newStack())
	mustCreate(t, s, snap)

	plan := samplePlan()
	if err := s.SetPlan(ctx, snap.Key, plan); err != nil {
		t.Fatalf("SetPlan: %v", err)
	}
	volume := plan["Volume"]
	volume.State, volume.Data = snapshot.ResourceComplete, snapshot.ResourceData{"snapshot_id": "snap-0abc"}
	if err := s.SetResource(ctx, snap.Key, volume); err != nil {
		t.Fatalf("SetResource: %v", err)
	}
	plan["Volume"] = volume
	if got := readSnapshot(t, s, snap.Key).Resources; !reflect.DeepEqual(got, plan) {
		t.Errorf("after SetResource the plan is\n%+v\nwant\n%+v", got, plan)
	}

	data := smallData()
	if err := s.Complete(ctx, snap.Key, *data, snapshot.ReasonComplete); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	reason := snapshot.ReasonComplete
	want := snap
	want.Status, want.StatusReason, want.Resources, want.Data = snapshot.StatusComplete, &reason, plan, data
	if got := readSnapshot(t, s, snap.Key); !reflect.DeepEqual(got, want) {
		t.Errorf("after Complete\n%+v\nwant\n%+v", got, want)
	}
}

// A resource's artefact may be made while another resource fails the
// snapshot: its ids must still reach the record, and only a record being
// created (not COMPLETE, not being deleted) takes them.
func TestSetResourceByStatus(t *testing.T) {
	tests := []struct {
		name    string
		action  snapshot.Action
		status  snapshot.Status
		wantErr error
	}{
		{name: "OK on CREATE IN_PROGRESS", action: snapshot.ActionCreate, status: snapshot.StatusInProgress},
		{name: "OK on CREATE FAILED", action: snapshot.ActionCreate, status: snapshot.StatusFailed},
		{name: "ErrStoreConflict on CREATE COMPLETE", action: snapshot.ActionCreate, status: snapshot.StatusComplete, wantErr: snapshot.ErrStoreConflict},
		{name: "ErrStoreConflict on DELETE IN_PROGRESS", action: snapshot.ActionDelete, status: snapshot.StatusInProgress, wantErr: snapshot.ErrStoreConflict},
		{name: "ErrStoreConflict on DELETE FAILED", action: snapshot.ActionDelete, status: snapshot.StatusFailed, wantErr: snapshot.ErrStoreConflict},
		{name: "ErrStoreConflict on DELETE COMPLETE", action: snapshot.ActionDelete, status: snapshot.StatusComplete, wantErr: snapshot.ErrStoreConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore()
			reason := "Resource SNAPSHOT failed: Server (AWS::EC2::Instance i-1): quota exceeded"
			snap := newSnapshot(t, newStack())
			snap.Action, snap.Status, snap.StatusReason, snap.Resources = tt.action, tt.status, &reason, samplePlan()
			mustCreate(t, s, snap)

			volume := snap.Resources["Volume"]
			volume.State, volume.Data = snapshot.ResourceInProgress, snapshot.ResourceData{"snapshot_id": "snap-late"}
			err := s.SetResource(context.Background(), snap.Key, volume)
			assertErr(t, err, tt.wantErr, "")
			if tt.wantErr != nil {
				assertErr(t, err, tt.wantErr, fmt.Sprintf("dynamostore: set resource of snapshot %s: write condition failed", snap.SnapshotID))
			}

			want := snap
			want.Resources = samplePlan()
			if tt.wantErr == nil {
				want.Resources["Volume"] = volume
			}
			if got := readSnapshot(t, s, snap.Key); !reflect.DeepEqual(got, want) {
				t.Errorf("read back\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestFailWritesReason(t *testing.T) {
	s := newStore()
	snap := newSnapshot(t, newStack())
	mustCreate(t, s, snap)
	const reason = "Resource SNAPSHOT failed: volume vol-1 is gone"
	if err := s.Fail(context.Background(), snap.Key, reason); err != nil {
		t.Fatalf("Fail: %v", err)
	}
	got := readSnapshot(t, s, snap.Key)
	if got.Status != snapshot.StatusFailed || got.StatusReason == nil || *got.StatusReason != reason {
		t.Errorf("status %s, reason %v; want FAILED, %q", got.Status, got.StatusReason, reason)
	}
}

func TestResourceData(t *testing.T) {
	tests := []struct {
		name    string
		data    snapshot.ResourceData
		want    snapshot.ResourceData // nil: data itself
		wantErr string
	}{
		{name: "OK string", data: snapshot.ResourceData{"snapshot_id": "snap-1"}},
		{name: "OK list of strings", data: snapshot.ResourceData{"snapshot_ids": []string{"snap-2", "snap-1", "snap-2"}}},
		{name: "OK empty list", data: snapshot.ResourceData{"snapshot_ids": []string{}}},
		{name: "OK string and list", data: snapshot.ResourceData{"image_id": "ami-1", "snapshot_ids": []string{"snap-1"}}},
		{name: "OK empty", data: snapshot.ResourceData{}},
		{name: "OK list decoded from JSON comes back as []string",
			data: snapshot.ResourceData{"snapshot_ids": []any{"snap-1", "snap-2"}},
			want: snapshot.ResourceData{"snapshot_ids": []string{"snap-1", "snap-2"}}},
		{name: "error for a number", data: snapshot.ResourceData{"size": 8},
			wantErr: `dynamostore: resource Volume: resource_data "size" is a int, not a string or a list of strings`},
		{name: "error for a list of numbers", data: snapshot.ResourceData{"sizes": []any{"a", 1.0}},
			wantErr: `dynamostore: resource Volume: resource_data "sizes": element 1 is a float64, not a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore()
			snap := newSnapshot(t, newStack())
			mustCreate(t, s, snap)
			res := snapshot.ResourceProgress{LogicalID: "Volume", PhysicalID: "vol-1", Type: "AWS::EC2::Volume",
				State: snapshot.ResourceComplete, Data: tt.data}
			err := s.SetResource(context.Background(), snap.Key, res)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("SetResource: %v", err)
			}
			want := tt.want
			if want == nil {
				want = tt.data
			}
			if got := readSnapshot(t, s, snap.Key).Resources["Volume"].Data; !reflect.DeepEqual(got, want) {
				t.Errorf("resource_data = %#v, want %#v", got, want)
			}
		})
	}
}

func TestDataPlacement(t *testing.T) {
	tests := []struct {
		name    string
		data    *snapshot.StackData
		chunked bool
	}{
		{name: "OK small data inline", data: smallData()},
		{name: "OK 3 MB of random data in chunks", data: largeData(t, 3<<20), chunked: true},
		{name: "OK data a little over the inline size in chunks", data: largeData(t, 500<<10), chunked: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore()
			snap := newSnapshot(t, newStack())
			mustCreate(t, s, snap)
			if err := s.Complete(context.Background(), snap.Key, *tt.data, snapshot.ReasonComplete); err != nil {
				t.Fatalf("Complete: %v", err)
			}
			if got := readSnapshot(t, s, snap.Key).Data; !reflect.DeepEqual(got, tt.data) {
				t.Fatalf("data did not round-trip")
			}

			gz, err := compressData(*tt.data)
			if err != nil {
				t.Fatal(err)
			}
			wantChunks := 0
			if tt.chunked {
				wantChunks = (len(gz) + chunkSize - 1) / chunkSize
			}
			item := rawItem(t, snapshotPK(snap.Key), snapshotSK(snap.SnapshotID))
			a := attrs{item: item}
			if got := a.num("data_chunks"); got != wantChunks || (tt.chunked && got < 2) {
				t.Errorf("data_chunks = %d, want %d (of %d compressed bytes)", got, wantChunks, len(gz))
			}
			if _, inline := item["data_gz"]; inline == tt.chunked {
				t.Errorf("data_gz present: %v, want %v", inline, !tt.chunked)
			}
			for n := 1; n <= wantChunks; n++ {
				chunk := attrs{item: rawItem(t, snapshotPK(snap.Key), dataChunks.sk(snap.SnapshotID, n))}
				if size := len(chunk.bytes("data_part")); size == 0 || size > chunkSize {
					t.Errorf("chunk %d holds %d bytes", n, size)
				}
			}
		})
	}
}

func TestDataReadFailsOnMissingChunk(t *testing.T) {
	s := newStore()
	snap := newSnapshot(t, newStack())
	mustCreate(t, s, snap)
	if err := s.Complete(context.Background(), snap.Key, *largeData(t, 1<<20), snapshot.ReasonComplete); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	_, err := testClient.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{
		TableName: aws.String(testTable), Key: itemKey(snapshotPK(snap.Key), dataChunks.sk(snap.SnapshotID, 2)),
	})
	if err != nil {
		t.Fatalf("DeleteItem: %v", err)
	}
	_, err = s.Snapshot(context.Background(), snap.Key)
	want := fmt.Sprintf("dynamostore: data of %s: chunk 2 is missing (found %s)", snap.SnapshotID, dataChunks.sk(snap.SnapshotID, 3))
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

func TestCreateTableIsIdempotent(t *testing.T) {
	if err := CreateTable(context.Background(), testClient, testTable); err != nil {
		t.Fatalf("CreateTable on an existing table: %v", err)
	}
}

func samplePlan() map[string]snapshot.ResourceProgress {
	return map[string]snapshot.ResourceProgress{
		"Volume": {LogicalID: "Volume", PhysicalID: "vol-1", Type: "AWS::EC2::Volume", State: snapshot.ResourcePending},
		"Server": {LogicalID: "Server", PhysicalID: "i-1", Type: "AWS::EC2::Instance", State: snapshot.ResourceInProgress,
			Data: snapshot.ResourceData{"image_id": "ami-1", "snapshot_ids": []string{"snap-1", "snap-2"}}},
		"Queue": {LogicalID: "Queue", PhysicalID: "https://sqs/q", Type: "AWS::SQS::Queue", State: snapshot.ResourceNoSnapshot},
		"Network.Db": {LogicalID: "Network.Db", PhysicalID: "db-1", Type: "AWS::RDS::DBInstance", State: snapshot.ResourceFailed,
			Data: snapshot.ResourceData{}, Reason: "quota exceeded"},
	}
}

func smallData() *snapshot.StackData {
	return &snapshot.StackData{
		Name:   "web",
		ID:     "5f6e2c1a-0000-4000-8000-000000000001",
		Action: "SNAPSHOT",
		Status: "COMPLETE",
		Template: map[string]any{
			"AWSTemplateFormatVersion": "2010-09-09",
			"Resources": map[string]any{
				"Volume": map[string]any{"Type": "AWS::EC2::Volume", "Properties": map[string]any{"Size": 8.0}},
			},
		},
		Environment: snapshot.Environment{
			Parameters:        map[string]string{"Env": "prod"},
			ResourceRegistry:  map[string]any{"resources": map[string]any{}},
			ParameterDefaults: map[string]any{},
			EventSinks:        []any{},
		},
		Files:     map[string]any{},
		ProjectID: "123456789012",
		Tags:      map[string]string{"team": "infra"},
		Resources: map[string]snapshot.ResourceDump{
			"Volume": {Name: "Volume", ResourceID: "vol-1", Type: "AWS::EC2::Volume", Action: "SNAPSHOT", Status: "COMPLETE",
				Metadata: map[string]any{}, ResourceData: snapshot.ResourceData{"snapshot_id": "snap-1"}},
		},
	}
}

// largeData returns data with a template of about size bytes of random
// text, which gzip can barely shrink.
func largeData(t testing.TB, size int) *snapshot.StackData {
	t.Helper()
	random := make([]byte, size*3/4)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	data := smallData()
	data.Template["Description"] = base64.StdEncoding.EncodeToString(random)
	return data
}

func TestSnapshotResourceReadsOneResourceAndNoData(t *testing.T) {
	ctx := context.Background()
	s := newStore()
	snap := newSnapshot(t, newStack())
	snap.Name = aws.String("nightly")
	mustCreate(t, s, snap)
	plan := map[string]snapshot.ResourceProgress{
		"Data": {LogicalID: "Data", PhysicalID: "vol-1", Type: "AWS::EC2::Volume", State: snapshot.ResourceInProgress,
			Data: snapshot.ResourceData{"snapshot_id": "snap-1"}},
		"Logs": {LogicalID: "Logs", PhysicalID: "vol-2", Type: "AWS::EC2::Volume", State: snapshot.ResourcePending},
	}
	if err := s.SetPlan(ctx, snap.Key, plan); err != nil {
		t.Fatal(err)
	}
	got, err := s.SnapshotResource(ctx, snap.Key, "Data")
	if err != nil {
		t.Fatal(err)
	}
	if got.Key != snap.Key || got.StackName != "web" || got.StackARN != snap.StackARN || *got.Name != "nightly" ||
		got.Action != snapshot.ActionCreate || got.Status != snapshot.StatusInProgress || !got.CreatedAt.Equal(testNow) || got.Data != nil {
		t.Fatalf("header %+v", got)
	}
	if len(got.Resources) != 1 || !reflect.DeepEqual(got.Resources["Data"], plan["Data"]) {
		t.Fatalf("resources %+v, want Data alone", got.Resources)
	}
	if got, err := s.SnapshotResource(ctx, snap.Key, "Nope"); err != nil || len(got.Resources) != 0 {
		t.Fatalf("unknown resource: %+v %v", got.Resources, err)
	}
	missing := snap.Key
	missing.SnapshotID = newSnapshotID(t)
	if _, err := s.SnapshotResource(ctx, missing, "Data"); !errors.Is(err, snapshot.ErrStoreNotFound) {
		t.Fatalf("missing record: %v", err)
	}
}
