package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// largePlan returns a plan of n resources named as in nested stacks. The
// first artefacts of them are EC2 instances, PENDING: their AMIs take the
// most room on the record. The others have no artefact.
func largePlan(n, artefacts int) map[string]snapshot.ResourceProgress {
	plan := make(map[string]snapshot.ResourceProgress, n)
	for i := range n {
		p := snapshot.ResourceProgress{LogicalID: fmt.Sprintf("Network.SecurityGroup%04d", i),
			PhysicalID: fmt.Sprintf("sg-%017x", i), Type: "AWS::EC2::SecurityGroup", State: snapshot.ResourceNoSnapshot}
		if i < artefacts {
			p = snapshot.ResourceProgress{LogicalID: fmt.Sprintf("Compute.Server%04d", i),
				PhysicalID: fmt.Sprintf("i-%017x", i), Type: "AWS::EC2::Instance", State: snapshot.ResourcePending}
		}
		plan[p.LogicalID] = p
	}
	return plan
}

// made returns an instance's resource as the workflow records it once its
// AMI is ready, with the ids awssnap gives it: an AMI of two volumes.
func made(snapshotID string, res snapshot.ResourceProgress) snapshot.ResourceProgress {
	n := strings.TrimPrefix(res.PhysicalID, "i-")
	res.State = snapshot.ResourceComplete
	res.Data = snapshot.ResourceData{
		"image_id":     "ami-" + n,
		"image_name":   "stacksnap-" + snapshotID + "-" + res.LogicalID,
		"snapshot_ids": []string{"snap-" + n, "snap-" + n[1:] + "f"},
	}
	return res
}

// mostArtefacts is the largest number of resources with an artefact that
// SetPlan takes on snap's record, in a plan of others more.
func mostArtefacts(snap snapshot.Snapshot, others int) int {
	base := itemSize(snapshotItem(snap))
	lo, hi := 0, 10_000 // lo fits, hi does not
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if _, err := placePlan(base, largePlan(mid+others, mid)); err != nil {
			hi = mid
		} else {
			lo = mid
		}
	}
	return lo
}

// setResources records, from 10 goroutines as the workflow's Map runs
// them, each resource with an artefact as made.
func setResources(t *testing.T, s *Store, key snapshot.Key, plan map[string]snapshot.ResourceProgress) {
	t.Helper()
	todo := make(chan snapshot.ResourceProgress)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for res := range todo {
				if err := s.SetResource(context.Background(), key, made(key.SnapshotID, res)); err != nil {
					t.Errorf("SetResource %s: %v", res.LogicalID, err)
				}
			}
		})
	}
	for _, res := range plan {
		if res.State != snapshot.ResourceNoSnapshot {
			todo <- res
		}
	}
	close(todo)
	wg.Wait()
}

// madePlan is plan once each resource with an artefact has it.
func madePlan(snapshotID string, plan map[string]snapshot.ResourceProgress) map[string]snapshot.ResourceProgress {
	out := make(map[string]snapshot.ResourceProgress, len(plan))
	for id, res := range plan {
		if res.State != snapshot.ResourceNoSnapshot {
			res = made(snapshotID, res)
		}
		out[id] = res
	}
	return out
}

// A large plan and large data run through the workflow: plan, concurrent
// updates of every resource with an artefact, completion. The record stays
// under the item limit and everything reads back as written.
func TestLargePlanWorkflow(t *testing.T) {
	most := mostArtefacts(newSnapshot(t, newStack()), 500)
	tests := []struct {
		name           string
		resources      int
		artefacts      int
		dataSize       int // of random text: about 3/4 of it compressed
		wantPlanChunks bool
		wantDataChunks bool
	}{
		{name: "OK 1,500 resources, 300 with an artefact, 150 KB of data", resources: 1500, artefacts: 300, dataSize: 200 << 10,
			wantDataChunks: true},
		{name: "OK 20,000 resources, 100 with an artefact, 15 KB of data", resources: 20_000, artefacts: 100, dataSize: 20 << 10,
			wantPlanChunks: true},
		{name: "OK as many resources with an artefact as fit, 150 KB of data", resources: most + 500, artefacts: most, dataSize: 200 << 10,
			wantPlanChunks: true, wantDataChunks: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, stack := newStore(), newStack()
			snap := newSnapshot(t, stack)
			mustCreate(t, s, snap)
			plan := largePlan(tt.resources, tt.artefacts)
			if err := s.SetPlan(ctx, snap.Key, plan); err != nil {
				t.Fatalf("SetPlan: %v", err)
			}
			if got := readSnapshot(t, s, snap.Key).Resources; !reflect.DeepEqual(got, plan) {
				t.Fatalf("the plan did not round-trip")
			}
			setResources(t, s, snap.Key, plan)
			data := largeData(t, tt.dataSize)
			if err := s.Complete(ctx, snap.Key, *data, snapshot.ReasonComplete); err != nil {
				t.Fatalf("Complete: %v", err)
			}

			reason := snapshot.ReasonComplete
			want := snap
			want.Status, want.StatusReason, want.Resources, want.Data = snapshot.StatusComplete, &reason, madePlan(snap.SnapshotID, plan), data
			if got := readSnapshot(t, s, snap.Key); !reflect.DeepEqual(got, want) {
				t.Errorf("Snapshot: the snapshot did not round-trip")
			}
			page, err := s.ListSnapshots(ctx, stack, snapshot.ListOptions{})
			if err != nil {
				t.Fatalf("ListSnapshots: %v", err)
			}
			if !reflect.DeepEqual(page.Snapshots, []snapshot.Snapshot{want}) {
				t.Errorf("ListSnapshots: the snapshot did not round-trip")
			}

			item := rawItem(t, snapshotPK(snap.Key), snapshotSK(snap.SnapshotID))
			if size := itemSize(item); size > maxRecordSize {
				t.Errorf("the record takes %d bytes, more than %d", size, maxRecordSize)
			}
			if _, ok := item["plan_chunks"]; ok != tt.wantPlanChunks {
				t.Errorf("plan_chunks present: %v, want %v", ok, tt.wantPlanChunks)
			}
			if _, ok := item["data_chunks"]; ok != tt.wantDataChunks {
				t.Errorf("data_chunks present: %v, want %v", ok, tt.wantDataChunks)
			}
		})
	}
}

// The limit of a plan is its number of resources with an artefact. One
// more than fit is refused with an error the workflow turns into a FAILED
// snapshot, saying how many fit; the record is left as it was.
func TestSetPlanTooLarge(t *testing.T) {
	s := newStore()
	snap := newSnapshot(t, newStack())
	mustCreate(t, s, snap)
	most := mostArtefacts(snap, 500)
	if most < 1000 {
		t.Errorf("a snapshot records at most %d resources with an artefact, want 1,000 or more", most)
	}

	err := s.SetPlan(context.Background(), snap.Key, largePlan(most+501, most+1))
	var refused *snapshot.ResourceSnapshotError
	if !errors.As(err, &refused) {
		t.Fatalf("err = %v, want a *snapshot.ResourceSnapshotError", err)
	}
	m := regexp.MustCompile(`^the stack has (\d+) resources to snapshot; one snapshot can record at most about (\d+)$`).FindStringSubmatch(refused.Message)
	if m == nil || m[1] != strconv.Itoa(most+1) {
		t.Fatalf("message = %q, want it to name %d resources and the limit", refused.Message, most+1)
	}
	if about, _ := strconv.Atoi(m[2]); math.Abs(float64(about-most)) > float64(most)/50 {
		t.Errorf("the message says about %d fit, but %d do", about, most)
	}
	if got := readSnapshot(t, s, snap.Key); !reflect.DeepEqual(got, snap) {
		t.Errorf("the refused plan changed the record")
	}
}

// A plan in chunks is replaced whole by a plan that fits in the record.
func TestSetPlanReplacesChunkedPlan(t *testing.T) {
	ctx := context.Background()
	s := newStore()
	snap := newSnapshot(t, newStack())
	mustCreate(t, s, snap)
	if err := s.SetPlan(ctx, snap.Key, largePlan(5000, 10)); err != nil {
		t.Fatalf("SetPlan: %v", err)
	}
	plan := samplePlan()
	if err := s.SetPlan(ctx, snap.Key, plan); err != nil {
		t.Fatalf("SetPlan: %v", err)
	}
	if got := readSnapshot(t, s, snap.Key).Resources; !reflect.DeepEqual(got, plan) {
		t.Errorf("plan = %+v\nwant %+v", got, plan)
	}
	if _, ok := rawItem(t, snapshotPK(snap.Key), snapshotSK(snap.SnapshotID))["plan_chunks"]; ok {
		t.Errorf("plan_chunks still present")
	}
}

// The workflow only updates resources with an artefact, which stay in the
// record; an update of one that went to chunks still lands, in the record,
// and wins over the chunks.
func TestSetResourceOfChunkedResource(t *testing.T) {
	ctx := context.Background()
	s := newStore()
	snap := newSnapshot(t, newStack())
	mustCreate(t, s, snap)
	plan := largePlan(5000, 10)
	if err := s.SetPlan(ctx, snap.Key, plan); err != nil {
		t.Fatalf("SetPlan: %v", err)
	}
	group := plan["Network.SecurityGroup4000"]
	group.Reason, group.Data = "looked at twice", snapshot.ResourceData{"ids": []string{}}
	if err := s.SetResource(ctx, snap.Key, group); err != nil {
		t.Fatalf("SetResource: %v", err)
	}
	plan[group.LogicalID] = group
	if got := readSnapshot(t, s, snap.Key).Resources; !reflect.DeepEqual(got, plan) {
		t.Errorf("the plan did not round-trip")
	}
}

// Chunked plan entries keep artefact ids as the record does: none apart
// from empty, lists as []string.
func TestChunkedPlanKeepsResourceData(t *testing.T) {
	s := newStore()
	snap := newSnapshot(t, newStack())
	snap.Resources = largePlan(5000, 0)
	for id, data := range map[string]snapshot.ResourceData{
		"Network.SecurityGroup0001": {},
		"Network.SecurityGroup0002": {"ids": []string{}},
		"Network.SecurityGroup0003": {"id": "sg-1", "ids": []string{"a", "b"}},
	} {
		res := snap.Resources[id]
		res.Data = data
		snap.Resources[id] = res
	}
	mustCreate(t, s, snap)
	if _, ok := rawItem(t, snapshotPK(snap.Key), snapshotSK(snap.SnapshotID))["plan_chunks"]; !ok {
		t.Fatalf("the plan is not in chunks: the test shows nothing")
	}
	if got := readSnapshot(t, s, snap.Key); !reflect.DeepEqual(got, snap) {
		t.Errorf("the snapshot did not round-trip")
	}
}

func TestPlanReadFailsOnMissingChunk(t *testing.T) {
	s := newStore()
	snap := newSnapshot(t, newStack())
	snap.Resources = largePlan(5000, 0)
	mustCreate(t, s, snap)
	_, err := testClient.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{
		TableName: aws.String(testTable), Key: itemKey(snapshotPK(snap.Key), planChunks.sk(snap.SnapshotID, 1)),
	})
	if err != nil {
		t.Fatalf("DeleteItem: %v", err)
	}
	_, err = s.Snapshot(context.Background(), snap.Key)
	want := fmt.Sprintf("dynamostore: plan of %s: 0 of 1 chunks found", snap.SnapshotID)
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

// itemSize never counts less than DynamoDB does: dynalite, like DynamoDB,
// bills a write by the KB of the item it wrote.
func TestItemSizeIsAnUpperBound(t *testing.T) {
	snap := newSnapshot(t, newStack())
	plan, err := resourcesAttr(madePlan(snap.SnapshotID, largePlan(1500, 1000)))
	if err != nil {
		t.Fatal(err)
	}
	gz, err := compressData(*largeData(t, 20<<10))
	if err != nil {
		t.Fatal(err)
	}
	item := snapshotItem(snap)
	item["resources"] = plan
	item["data_gz"] = &types.AttributeValueMemberB{Value: gz}
	item["data_chunks"] = num(1234567)
	out, err := testClient.PutItem(context.Background(), &dynamodb.PutItemInput{
		TableName: aws.String(testTable), Item: item, ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		t.Fatalf("PutItem: %v", err)
	}
	billed := aws.ToFloat64(out.ConsumedCapacity.CapacityUnits)
	if estimate := math.Ceil(float64(itemSize(item)) / 1024); estimate < billed {
		t.Errorf("itemSize says %.0f KB, DynamoDB counts %.0f", estimate, billed)
	}
}
