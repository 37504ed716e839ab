package dynamostore

import (
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// Keys of the items. A stack and its snapshots share a partition, so one
// Query lists them; snapshot ids are UUIDv7, so SNAP# keys sort by creation.

const (
	stackSK        = "STACK"
	snapshotPrefix = "SNAP#"
)

func stackPK(k snapshot.StackKey) string { return "STACK#" + k.TenantID + "#" + k.StackID }

func snapshotPK(k snapshot.Key) string {
	return stackPK(snapshot.StackKey{TenantID: k.TenantID, StackID: k.StackID})
}

func snapshotSK(snapshotID string) string { return snapshotPrefix + snapshotID }

func itemKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(pk), attrSK: str(sk)}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num(n int) types.AttributeValue { return &types.AttributeValueMemberN{Value: strconv.Itoa(n)} }

// timestamp is how times are stored: RFC3339 in UTC, to the second, as
// Heat shows creation_time.
func timestamp(t time.Time) types.AttributeValue {
	return str(t.UTC().Truncate(time.Second).Format(time.RFC3339))
}

// itemSize estimates, from above, the size DynamoDB counts against its
// limit of an item: the names and values of its attributes, with a map or
// list taking 3 bytes and each of its elements 1 more. (A number takes
// about one byte per two digits; this counts one per digit.)
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += attrSize(name, v)
	}
	return n
}

func attrSize(name string, v types.AttributeValue) int {
	return len(name) + valueSize(v)
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return len(v.Value) + 1
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberM:
		return 3 + len(v.Value) + itemSize(v.Value)
	case *types.AttributeValueMemberL:
		n := 3 + len(v.Value)
		for _, e := range v.Value {
			n += valueSize(e)
		}
		return n
	case *types.AttributeValueMemberSS:
		return sumLen(v.Value)
	case *types.AttributeValueMemberNS:
		return sumLen(v.Value) + len(v.Value)
	case *types.AttributeValueMemberBS:
		return sumLen(v.Value)
	default: // BOOL, NULL
		return 1
	}
}

func sumLen[E string | []byte](list []E) int {
	n := 0
	for _, e := range list {
		n += len(e)
	}
	return n
}

// snapshotItem encodes a snapshot record, without its plan and data.
func snapshotItem(s snapshot.Snapshot) map[string]types.AttributeValue {
	item := itemKey(snapshotPK(s.Key), snapshotSK(s.SnapshotID))
	item[attrGSI1PK] = str(snapshotSK(s.SnapshotID))
	item["snapshot_id"] = str(s.SnapshotID)
	item["tenant_id"] = str(s.TenantID)
	item["stack_id"] = str(s.StackID)
	item["stack_name"] = str(s.StackName)
	item["stack_arn"] = str(s.StackARN)
	item["action"] = str(string(s.Action))
	item["status"] = str(string(s.Status))
	item["created_at"] = timestamp(s.CreatedAt)
	if s.Name != nil {
		item["name"] = str(*s.Name)
	}
	if s.StatusReason != nil {
		item["status_reason"] = str(*s.StatusReason)
	}
	return item
}

func resourcesAttr(resources map[string]snapshot.ResourceProgress) (*types.AttributeValueMemberM, error) {
	m := make(map[string]types.AttributeValue, len(resources))
	for id, p := range resources {
		av, err := resourceAttr(p)
		if err != nil {
			return nil, err
		}
		m[id] = av
	}
	return &types.AttributeValueMemberM{Value: m}, nil
}

func resourceAttr(p snapshot.ResourceProgress) (types.AttributeValue, error) {
	m := map[string]types.AttributeValue{
		"logical_id":  str(p.LogicalID),
		"physical_id": str(p.PhysicalID),
		"type":        str(p.Type),
		"state":       str(string(p.State)),
	}
	if p.Data != nil {
		data, err := resourceDataAttr(p.Data)
		if err != nil {
			return nil, fmt.Errorf("dynamostore: resource %s: %w", p.LogicalID, err)
		}
		m["resource_data"] = data
	}
	if p.Reason != "" {
		m["reason"] = str(p.Reason)
	}
	return &types.AttributeValueMemberM{Value: m}, nil
}

// resourceDataAttr encodes artefact ids: strings, and lists of strings as
// lists (not string sets, which lose order and cannot be empty).
func resourceDataAttr(data snapshot.ResourceData) (types.AttributeValue, error) {
	m := make(map[string]types.AttributeValue, len(data))
	for k, v := range data {
		switch v := v.(type) {
		case string:
			m[k] = str(v)
		case []string:
			m[k] = stringList(v)
		case []any: // what JSON decoding makes of a list of strings
			list := make([]string, len(v))
			for i, e := range v {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("resource_data %q: element %d is a %T, not a string", k, i, e)
				}
				list[i] = s
			}
			m[k] = stringList(list)
		default:
			return nil, fmt.Errorf("resource_data %q is a %T, not a string or a list of strings", k, v)
		}
	}
	return &types.AttributeValueMemberM{Value: m}, nil
}

func stringList(list []string) types.AttributeValue {
	l := make([]types.AttributeValue, len(list))
	for i, s := range list {
		l[i] = str(s)
	}
	return &types.AttributeValueMemberL{Value: l}
}

// attrs reads attributes of an item (or of a map inside one, whose path is
// prefix); the first malformed one is kept in err.
type attrs struct {
	item   map[string]types.AttributeValue
	prefix string
	err    error
}

func (a *attrs) fail(name, problem string) {
	if a.err == nil {
		a.err = fmt.Errorf("dynamostore: attribute %s%s %s", a.prefix, name, problem)
	}
}

// str returns a string attribute, and "" when it is absent.
func (a *attrs) str(name string) string {
	s, _ := a.optStr(name)
	return s
}

func (a *attrs) optStr(name string) (string, bool) {
	switch v := a.item[name].(type) {
	case nil:
		return "", false
	case *types.AttributeValueMemberS:
		return v.Value, true
	default:
		a.fail(name, "is not a string")
		return "", false
	}
}

func (a *attrs) strPtr(name string) *string {
	if s, ok := a.optStr(name); ok {
		return &s
	}
	return nil
}

// num returns a number attribute, and 0 when it is absent.
func (a *attrs) num(name string) int {
	switch v := a.item[name].(type) {
	case nil:
		return 0
	case *types.AttributeValueMemberN:
		n, err := strconv.Atoi(v.Value)
		if err != nil {
			a.fail(name, "is not an integer")
		}
		return n
	default:
		a.fail(name, "is not a number")
		return 0
	}
}

func (a *attrs) time(name string) time.Time {
	s, ok := a.optStr(name)
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		a.fail(name, "is not an RFC3339 time")
	}
	return t
}

func (a *attrs) bytes(name string) []byte {
	switch v := a.item[name].(type) {
	case nil:
		return nil
	case *types.AttributeValueMemberB:
		return v.Value
	default:
		a.fail(name, "is not binary")
		return nil
	}
}

func (a *attrs) mapAttr(name string) (map[string]types.AttributeValue, bool) {
	switch v := a.item[name].(type) {
	case nil:
		return nil, false
	case *types.AttributeValueMemberM:
		return v.Value, true
	default:
		a.fail(name, "is not a map")
		return nil, false
	}
}

// resources returns the plan, and nil when it is absent or empty.
func (a *attrs) resources(name string) map[string]snapshot.ResourceProgress {
	m, ok := a.mapAttr(name)
	if !ok || len(m) == 0 {
		return nil
	}
	resources := make(map[string]snapshot.ResourceProgress, len(m))
	for id, av := range m {
		r, ok := av.(*types.AttributeValueMemberM)
		if !ok {
			a.fail(name+"."+id, "is not a map")
			continue
		}
		ra := attrs{item: r.Value, prefix: a.prefix + name + "." + id + "."}
		resources[id] = snapshot.ResourceProgress{
			LogicalID:  ra.str("logical_id"),
			PhysicalID: ra.str("physical_id"),
			Type:       ra.str("type"),
			State:      snapshot.ResourceState(ra.str("state")),
			Data:       ra.resourceData("resource_data"),
			Reason:     ra.str("reason"),
		}
		if a.err == nil {
			a.err = ra.err
		}
	}
	return resources
}

func (a *attrs) resourceData(name string) snapshot.ResourceData {
	m, ok := a.mapAttr(name)
	if !ok {
		return nil
	}
	data := make(snapshot.ResourceData, len(m))
	for k, av := range m {
		switch v := av.(type) {
		case *types.AttributeValueMemberS:
			data[k] = v.Value
		case *types.AttributeValueMemberL:
			list := make([]string, len(v.Value))
			for i, e := range v.Value {
				s, ok := e.(*types.AttributeValueMemberS)
				if !ok {
					a.fail(name+"."+k, "has an element that is not a string")
					continue
				}
				list[i] = s.Value
			}
			data[k] = list
		default:
			a.fail(name+"."+k, "is neither a string nor a list")
		}
	}
	return data
}

func decodeStackRecord(item map[string]types.AttributeValue) (snapshot.StackRecord, error) {
	a := attrs{item: item}
	rec := snapshot.StackRecord{
		StackKey:      snapshot.StackKey{TenantID: a.str("tenant_id"), StackID: a.str("stack_id")},
		StackName:     a.str("stack_name"),
		StackARN:      a.str("stack_arn"),
		SnapshotCount: a.num("snapshot_count"),
	}
	if id, locked := a.optStr("lock_snapshot_id"); locked {
		rec.Lock = &snapshot.Lock{SnapshotID: id, Action: a.str("lock_action"), Since: a.time("lock_since")}
	}
	return rec, a.err
}

// outOfRecord says where the parts of a snapshot are that may be out of
// its record: the data, inline (compressed) or in chunks, and the part of
// the plan in chunks, if any.
type outOfRecord struct {
	dataGz     []byte
	dataChunks int
	planChunks int
}

// decodeSnapshot decodes a snapshot record, and says where the rest is.
func decodeSnapshot(item map[string]types.AttributeValue) (snapshot.Snapshot, outOfRecord, error) {
	a := attrs{item: item}
	s := snapshot.Snapshot{
		Key: snapshot.Key{
			TenantID:   a.str("tenant_id"),
			StackID:    a.str("stack_id"),
			SnapshotID: a.str("snapshot_id"),
		},
		StackName:    a.str("stack_name"),
		StackARN:     a.str("stack_arn"),
		Name:         a.strPtr("name"),
		Action:       snapshot.Action(a.str("action")),
		Status:       snapshot.Status(a.str("status")),
		StatusReason: a.strPtr("status_reason"),
		CreatedAt:    a.time("created_at"),
		Resources:    a.resources("resources"),
	}
	out := outOfRecord{
		dataGz:     a.bytes("data_gz"),
		dataChunks: a.num("data_chunks"),
		planChunks: a.num("plan_chunks"),
	}
	return s, out, a.err
}
