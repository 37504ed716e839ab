package simcloud

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// allKinds has one resource of every type the cloud snapshots, and one it
// does not.
const allKinds = `
Resources:
  Disk: {Type: AWS::EC2::Volume}
  Server: {Type: AWS::EC2::Instance}
  Db: {Type: AWS::RDS::DBInstance}
  Cluster: {Type: AWS::RDS::DBCluster}
  Table: {Type: AWS::DynamoDB::Table}
  Bucket: {Type: AWS::S3::Bucket}
`

// fixture is a cloud with the allKinds stack, on a fake clock.
type fixture struct {
	cloud *Cloud
	clock *fakeClock
	stack snapshot.Stack
}

func newFixture(t *testing.T, statePath string) *fixture {
	t.Helper()
	clock := newFakeClock()
	c := newCloud(t, Options{Clock: clock.Now, StatePath: statePath})
	s, err := c.AddStack(account, "all-kinds", []byte(allKinds))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{cloud: c, clock: clock, stack: s}
}

func (f *fixture) request(t *testing.T, snapshotID, logicalID string) snapshot.ArtefactRequest {
	t.Helper()
	return snapshot.ArtefactRequest{
		Key:       snapshot.Key{TenantID: account, StackID: f.stack.ID, SnapshotID: snapshotID},
		StackName: f.stack.Name,
		Resource:  findResource(t, f.cloud, account, f.stack.Name, logicalID),
	}
}

func (f *fixture) snapshotter(t *testing.T, resourceType string) snapshot.Snapshotter {
	t.Helper()
	s, ok := f.cloud.Snapshotters()[resourceType]
	if !ok {
		t.Fatalf("no snapshotter for %s", resourceType)
	}
	return s
}

func TestSnapshottersTypes(t *testing.T) {
	got := slices.Sorted(maps.Keys(newFixture(t, "").cloud.Snapshotters()))
	want := []string{"AWS::DynamoDB::Table", "AWS::EC2::Instance", "AWS::EC2::Volume", "AWS::RDS::DBCluster", "AWS::RDS::DBInstance"}
	if !slices.Equal(got, want) {
		t.Errorf("snapshotters for %v, want %v", got, want)
	}
}

// kindCases describe each type's artefact: the key of its id, the data
// Start returns (each key's value must match its pattern), the kinds made,
// and AWS's message once the artefact is gone.
var kindCases = []struct {
	resourceType, logicalID string
	idKey                   string
	data                    map[string]string
	kinds                   []string
	gone                    string // %s is the artefact id
}{
	{"AWS::EC2::Volume", "Disk", "snapshot_id",
		map[string]string{"snapshot_id": `^snap-[0-9a-f]{17}$`},
		[]string{KindEBSSnapshot}, "The snapshot '%s' does not exist."},
	{"AWS::EC2::Instance", "Server", "image_id",
		map[string]string{"image_id": `^ami-[0-9a-f]{17}$`, "snapshot_ids": `^\[snap-[0-9a-f]{17}\]$`},
		[]string{KindAMI, KindEBSSnapshot}, "The image id '[%s]' does not exist"},
	{"AWS::RDS::DBInstance", "Db", "db_snapshot_identifier",
		map[string]string{"db_snapshot_identifier": `^stacksnap-db-[0-9a-f]{8}$`},
		[]string{KindDBSnapshot}, "DBSnapshot %s not found."},
	{"AWS::RDS::DBCluster", "Cluster", "db_cluster_snapshot_identifier",
		map[string]string{"db_cluster_snapshot_identifier": `^stacksnap-cluster-[0-9a-f]{8}$`},
		[]string{KindDBClusterSnapshot}, "DBClusterSnapshot %s not found."},
	{"AWS::DynamoDB::Table", "Table", "backup_arn",
		map[string]string{"backup_arn": `^arn:aws:dynamodb:us-east-1:123456789012:table/all-kinds-Table-[0-9A-Z]{12}/backup/1767323045000-[0-9a-f]{8}$`},
		[]string{KindDynamoDBBackup}, "Backup not found: %s"},
}

func TestSnapshotterLifecycle(t *testing.T) {
	for _, tt := range kindCases {
		t.Run(tt.resourceType, func(t *testing.T) {
			f := newFixture(t, "")
			s := f.snapshotter(t, tt.resourceType)
			req := f.request(t, "snap-1", tt.logicalID)

			data, err := s.Start(ctx, req)
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			checkData(t, data, tt.data)
			id := data[tt.idKey].(string)

			wantTags := map[string]string{TagStackID: f.stack.ID, TagSnapshotID: "snap-1", TagTenant: account, TagLogicalID: tt.logicalID}
			checkArtefacts(t, f.cloud, tt.kinds, StatePending, wantTags)
			if p, err := s.Check(ctx, req, data); err != nil || !reflect.DeepEqual(p, snapshot.Progress{}) {
				t.Errorf("Check at once = %+v, %v; want pending", p, err)
			}

			f.clock.Advance(3*time.Second - time.Nanosecond)
			if p, err := s.Check(ctx, req, data); err != nil || !reflect.DeepEqual(p, snapshot.Progress{}) {
				t.Errorf("Check just before 3s = %+v, %v; want pending", p, err)
			}
			f.clock.Advance(time.Nanosecond)
			if p, err := s.Check(ctx, req, data); err != nil || !reflect.DeepEqual(p, snapshot.Progress{Done: true}) {
				t.Errorf("Check after 3s = %+v, %v; want done", p, err)
			}
			checkArtefacts(t, f.cloud, tt.kinds, StateAvailable, wantTags)

			again, err := s.Start(ctx, req)
			if err != nil || !reflect.DeepEqual(again, data) {
				t.Errorf("second Start = %v, %v; want %v", again, err, data)
			}
			checkArtefacts(t, f.cloud, tt.kinds, StateAvailable, wantTags)

			if err := s.Delete(ctx, stranger, data); err != nil {
				t.Errorf("Delete by another account: %v", err)
			}
			checkArtefacts(t, f.cloud, tt.kinds, StateAvailable, wantTags)
			if err := s.Delete(ctx, account, data); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			checkArtefacts(t, f.cloud, nil, "", nil)
			if err := s.Delete(ctx, account, data); err != nil {
				t.Errorf("Delete again: %v", err)
			}
			want := snapshot.Progress{Failure: fmt.Sprintf(tt.gone, id)}
			if p, err := s.Check(ctx, req, data); err != nil || !reflect.DeepEqual(p, want) {
				t.Errorf("Check after delete = %+v, %v; want %+v", p, err, want)
			}
		})
	}
}

// checkData checks that data has exactly the keys of patterns, each value
// (lists printed as [a b]) matching its pattern.
func checkData(t *testing.T, data snapshot.ResourceData, patterns map[string]string) {
	t.Helper()
	if got, want := slices.Sorted(maps.Keys(data)), slices.Sorted(maps.Keys(patterns)); !slices.Equal(got, want) {
		t.Fatalf("data keys = %v, want %v", got, want)
	}
	for key, pattern := range patterns {
		if v := fmt.Sprint(data[key]); !regexp.MustCompile(pattern).MatchString(v) {
			t.Errorf("data[%s] = %s, want %s", key, v, pattern)
		}
	}
}

// checkArtefacts checks that the artefacts are exactly of these kinds, all
// in state and tagged with tags.
func checkArtefacts(t *testing.T, c *Cloud, kinds []string, state string, tags map[string]string) {
	t.Helper()
	artefacts := c.Artefacts()
	var got []string
	for _, a := range artefacts {
		got = append(got, a.Kind)
		if a.State != state || a.Tenant != account || !reflect.DeepEqual(a.Tags, tags) {
			t.Errorf("artefact %+v, want state %s, tenant %s, tags %v", a, state, account, tags)
		}
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(kinds))
	if !slices.Equal(got, want) {
		t.Errorf("artefacts of kinds %v, want %v", got, want)
	}
}

func TestStartAnotherSnapshotMakesAnotherArtefact(t *testing.T) {
	f := newFixture(t, "")
	s := f.snapshotter(t, "AWS::EC2::Volume")
	first, err := s.Start(ctx, f.request(t, "snap-1", "Disk"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.Start(ctx, f.request(t, "snap-2", "Disk"))
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(first, second) {
		t.Errorf("two snapshots share the artefact %v", first)
	}
	if n := len(f.cloud.Artefacts()); n != 2 {
		t.Errorf("%d artefacts, want 2", n)
	}
}

func TestBehaviour(t *testing.T) {
	tests := []struct {
		name      string
		behaviour Behaviour
		at        time.Duration
		want      snapshot.Progress
		state     string
	}{
		{"default duration", Behaviour{}, 3 * time.Second, snapshot.Progress{Done: true}, StateAvailable},
		{"longer, still pending", Behaviour{Duration: time.Minute}, 59 * time.Second, snapshot.Progress{}, StatePending},
		{"longer, done", Behaviour{Duration: time.Minute}, time.Minute, snapshot.Progress{Done: true}, StateAvailable},
		{"fail, pending first", Behaviour{Fail: "simulated failure"}, time.Second, snapshot.Progress{}, StatePending},
		{"fail", Behaviour{Fail: "simulated failure"}, 3 * time.Second, snapshot.Progress{Failure: "simulated failure"}, StateFailed},
	}
	for _, kc := range kindCases {
		for _, tt := range tests {
			t.Run(kc.resourceType+"/"+tt.name, func(t *testing.T) {
				f := newFixture(t, "")
				if err := f.cloud.SetBehaviour(account, f.stack.Name, kc.logicalID, tt.behaviour); err != nil {
					t.Fatal(err)
				}
				s := f.snapshotter(t, kc.resourceType)
				req := f.request(t, "snap-1", kc.logicalID)
				data, err := s.Start(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				f.clock.Advance(tt.at)
				if p, err := s.Check(ctx, req, data); err != nil || !reflect.DeepEqual(p, tt.want) {
					t.Errorf("Check = %+v, %v; want %+v", p, err, tt.want)
				}
				for _, a := range f.cloud.Artefacts() {
					if a.State != tt.state {
						t.Errorf("artefact %s is %s, want %s", a.ID, a.State, tt.state)
					}
				}
			})
		}
	}
}

func TestBehaviourIsFixedAtStart(t *testing.T) {
	f := newFixture(t, "")
	s := f.snapshotter(t, "AWS::EC2::Volume")
	req := f.request(t, "snap-1", "Disk")
	data, err := s.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.cloud.SetBehaviour(account, f.stack.Name, "Disk", Behaviour{Fail: "too late", Duration: time.Hour}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(3 * time.Second)
	if p, err := s.Check(ctx, req, data); err != nil || !p.Done {
		t.Errorf("Check = %+v, %v; want done", p, err)
	}
}

func TestThrottling(t *testing.T) {
	for _, kc := range kindCases {
		t.Run(kc.resourceType, func(t *testing.T) {
			f := newFixture(t, "")
			if err := f.cloud.SetBehaviour(account, f.stack.Name, kc.logicalID, Behaviour{ThrottleStarts: 2}); err != nil {
				t.Fatal(err)
			}
			s := f.snapshotter(t, kc.resourceType)
			req := f.request(t, "snap-1", kc.logicalID)
			for i := range 2 {
				_, err := s.Start(ctx, req)
				var throttled *snapshot.ThrottlingError
				if !errors.As(err, &throttled) || throttled.Message != "Rate exceeded" {
					t.Fatalf("Start %d error = %v, want ThrottlingError Rate exceeded", i+1, err)
				}
			}
			if n := len(f.cloud.Artefacts()); n != 0 {
				t.Errorf("throttled starts made %d artefacts", n)
			}
			if _, err := s.Start(ctx, req); err != nil {
				t.Errorf("third Start: %v", err)
			}
		})
	}
}

func TestSetBehaviourErrors(t *testing.T) {
	f := newFixture(t, "")
	t.Run("unknown resource", func(t *testing.T) {
		wantError(t, f.cloud.SetBehaviour(account, f.stack.Name, "Nope", Behaviour{}),
			snapshot.CodeNotFound, "The Resource (Nope) could not be found in Stack all-kinds.")
	})
	t.Run("negative", func(t *testing.T) {
		wantError(t, f.cloud.SetBehaviour(account, f.stack.Name, "Disk", Behaviour{ThrottleStarts: -1}),
			snapshot.CodeBadRequest, "Duration and ThrottleStarts cannot be negative.")
	})
}

func TestStartOfMissingResource(t *testing.T) {
	f := newFixture(t, "")
	disk := f.request(t, "snap-1", "Disk")
	tests := []struct {
		name   string
		mutate func(*snapshot.ArtefactRequest)
	}{
		{"other account", func(r *snapshot.ArtefactRequest) { r.TenantID = stranger }},
		{"other stack", func(r *snapshot.ArtefactRequest) { r.StackID = "00000000-0000-0000-0000-000000000000" }},
		{"other physical id", func(r *snapshot.ArtefactRequest) { r.Resource.PhysicalID = "vol-00000000000000000" }},
		{"unknown logical id", func(r *snapshot.ArtefactRequest) { r.Resource.LogicalID = "Nope" }},
	}
	s := f.snapshotter(t, "AWS::EC2::Volume")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := disk
			tt.mutate(&req)
			_, err := s.Start(ctx, req)
			var failed *snapshot.ResourceSnapshotError
			want := fmt.Sprintf("The volume '%s' does not exist.", req.Resource.PhysicalID)
			if !errors.As(err, &failed) || failed.Message != want {
				t.Errorf("Start error = %v, want ResourceSnapshotError %q", err, want)
			}
		})
	}
	t.Run("deleted stack", func(t *testing.T) {
		if err := f.cloud.DeleteStack(account, f.stack.Name); err != nil {
			t.Fatal(err)
		}
		_, err := s.Start(ctx, disk)
		var failed *snapshot.ResourceSnapshotError
		if !errors.As(err, &failed) {
			t.Errorf("Start error = %v, want ResourceSnapshotError", err)
		}
	})
}

func TestMalformedResourceData(t *testing.T) {
	f := newFixture(t, "")
	s := f.snapshotter(t, "AWS::EC2::Volume")
	req := f.request(t, "snap-1", "Disk")
	bad := snapshot.ResourceData{"image_id": "ami-0"}
	const want = "resource data of AWS::EC2::Volume has no snapshot_id"
	if _, err := s.Check(ctx, req, bad); err == nil || err.Error() != want {
		t.Errorf("Check error = %v, want %s", err, want)
	}
	if err := s.Delete(ctx, account, bad); err == nil || err.Error() != want {
		t.Errorf("Delete error = %v, want %s", err, want)
	}
}

func TestConcurrentStarts(t *testing.T) {
	f := newFixture(t, "")
	s := f.snapshotter(t, "AWS::EC2::Instance")
	req := f.request(t, "snap-1", "Server")
	results := make([]snapshot.ResourceData, 16)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			data, err := s.Start(ctx, req)
			if err != nil {
				t.Error(err)
			}
			results[i] = data
		})
	}
	wg.Wait()
	for _, data := range results[1:] {
		if !reflect.DeepEqual(data, results[0]) {
			t.Fatalf("concurrent starts returned %v and %v", data, results[0])
		}
	}
	if n := len(f.cloud.Artefacts()); n != 2 {
		t.Errorf("%d artefacts, want an AMI and its snapshot", n)
	}
}
