package dynamostore

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// A plan stays whole in the snapshot record when it fits. A larger one is
// split: the resources that get an artefact stay in the record, and the
// others (NO_SNAPSHOT, which the workflow never changes) go into plan
// chunks, which plan_chunks counts. A read puts the two together again.
//
// The whole plan cannot go to chunks: SetResource must change one resource
// in the same atomic write that checks the record's status, while up to 10
// Map iterations call it at once, and without transactions (dynalite has
// none) only an UpdateItem of the record itself does that. So the
// resources SetResource changes stay in the record; how many fit is what
// limits a plan (about 1,100 resources with an artefact; the others do
// not count).

// artefactReserve is the room kept in the record, per resource that gets
// an artefact, for the ids SetResource adds to it: about 50 bytes for an
// EBS snapshot, 120 for a backup ARN, 200 for an AMI with two volumes.
const artefactReserve = 192

// placedPlan is where a plan goes.
type placedPlan struct {
	kept  types.AttributeValue // the record's resources attribute
	moved []byte               // the other resources, gzip JSON; nil: none
}

// placePlan decides where a plan goes in a record that takes recordSize
// bytes without it. A plan whose resources with an artefact do not fit in
// the record is refused with a *snapshot.ResourceSnapshotError, which the
// workflow turns into a FAILED snapshot with its message.
func placePlan(recordSize int, resources map[string]snapshot.ResourceProgress) (placedPlan, error) {
	all, err := resourcesAttr(resources)
	if err != nil {
		return placedPlan{}, err
	}
	kept := map[string]types.AttributeValue{}
	moved := map[string]chunkedResource{}
	for id, p := range resources {
		if p.State == snapshot.ResourceNoSnapshot {
			moved[id] = chunkedResource(p)
		} else {
			kept[id] = all.Value[id]
		}
	}
	reserve := len(kept) * artefactReserve
	if recordSize+attrSize("resources", all)+reserve <= maxRecordSize {
		return placedPlan{kept: all}, nil
	}
	keptAttr := &types.AttributeValueMemberM{Value: kept}
	room := maxRecordSize - recordSize - attrSize("plan_chunks", num(9999)) // chunk keys count to 9999
	if size := attrSize("resources", keptAttr) + reserve; size > room {
		perResource := size / max(len(kept), 1)
		return placedPlan{}, &snapshot.ResourceSnapshotError{Message: fmt.Sprintf(
			"the stack has %d resources to snapshot; one snapshot can record at most about %d", len(kept), room/perResource)}
	}
	gz, err := compressJSON("plan", moved)
	if err != nil {
		return placedPlan{}, err
	}
	return placedPlan{kept: keptAttr, moved: gz}, nil
}

// chunkedResource is a resource as plan chunks hold it. Unlike the JSON
// of snapshot.ResourceProgress, it keeps empty artefact ids apart from
// none, as the record does.
type chunkedResource struct {
	LogicalID  string                 `json:"logical_id"`
	PhysicalID string                 `json:"physical_id"`
	Type       string                 `json:"type"`
	State      snapshot.ResourceState `json:"state"`
	Data       snapshot.ResourceData  `json:"resource_data"`
	Reason     string                 `json:"reason,omitempty"`
}

// decompressPlan decodes plan chunks. Lists of artefact ids come back
// from JSON as []any: they are made []string again, as a record gives them.
func decompressPlan(gz []byte) (map[string]snapshot.ResourceProgress, error) {
	var chunked map[string]chunkedResource
	if err := decompressJSON("plan", gz, &chunked); err != nil {
		return nil, err
	}
	plan := make(map[string]snapshot.ResourceProgress, len(chunked))
	for id, c := range chunked {
		for k, v := range c.Data {
			list, ok := v.([]any)
			if !ok {
				continue
			}
			ids := make([]string, len(list))
			for i, e := range list {
				if ids[i], ok = e.(string); !ok {
					return nil, fmt.Errorf("dynamostore: plan chunks: %s.resource_data.%s has an element that is not a string", id, k)
				}
			}
			c.Data[k] = ids
		}
		plan[id] = snapshot.ResourceProgress(c)
	}
	return plan, nil
}
