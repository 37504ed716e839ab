// Package dynamostore keeps stack and snapshot records in one DynamoDB
// table: it implements snapshot.Store.
//
// Items, all under the stack's partition PK=STACK#<tenant>#<stackID>:
//
//	SK=STACK                 the stack record: count of snapshots, lock
//	SK=SNAP#<id>             a snapshot record; GSI1PK=SNAP#<id> finds it by id
//	SK=DATA#<id>#<000n>      chunk n of a snapshot's data, when too large
//	                         to stay in the record
//	SK=PLAN#<id>#<000n>      chunk n of the part of a snapshot's plan that
//	                         does not stay in the record (see placePlan)
package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// API is the part of the DynamoDB client the store calls.
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Store is a snapshot.Store over one DynamoDB table (see CreateTable).
type Store struct {
	api   API
	table string
}

var _ snapshot.Store = (*Store)(nil)

// New returns a store that keeps its records in table.
func New(api API, table string) *Store {
	return &Store{api: api, table: table}
}

// writeErr names a failed write; a failed condition becomes
// snapshot.ErrStoreConflict.
func writeErr(op, id string, err error) error {
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		err = snapshot.ErrStoreConflict
	}
	return fmt.Errorf("dynamostore: %s %s: %w", op, id, err)
}

// Reserve locks the stack for lock.SnapshotID and counts one more snapshot,
// in one conditional update that also creates the stack record.
func (s *Store) Reserve(ctx context.Context, rec snapshot.StackRecord, lock snapshot.Lock, limit int) error {
	cond := "attribute_not_exists(lock_snapshot_id)"
	values := map[string]types.AttributeValue{
		":tenant":      str(rec.TenantID),
		":stack":       str(rec.StackID),
		":name":        str(rec.StackName),
		":arn":         str(rec.StackARN),
		":lock_id":     str(lock.SnapshotID),
		":lock_action": str(lock.Action),
		":lock_since":  timestamp(lock.Since),
		":one":         num(1),
	}
	switch {
	case limit > 0:
		// A stack without a record yet has no snapshots.
		cond += " AND (attribute_not_exists(snapshot_count) OR snapshot_count < :limit)"
		values[":limit"] = num(limit)
	case limit == 0:
		// Not even a first one; a comparison with a missing count is false.
		cond += " AND snapshot_count < :limit"
		values[":limit"] = num(limit)
	}
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table,
		Key:       itemKey(stackPK(rec.StackKey), stackSK),
		UpdateExpression: aws.String("SET tenant_id = :tenant, stack_id = :stack, stack_name = :name, stack_arn = :arn," +
			" lock_snapshot_id = :lock_id, lock_action = :lock_action, lock_since = :lock_since" +
			" ADD snapshot_count :one"),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeValues: values,
	})
	if err != nil {
		return writeErr("reserve stack", rec.StackID, err)
	}
	return nil
}

// StackRecord reads a stack record.
func (s *Store) StackRecord(ctx context.Context, key snapshot.StackKey) (snapshot.StackRecord, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            itemKey(stackPK(key), stackSK),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return snapshot.StackRecord{}, fmt.Errorf("dynamostore: read stack %s: %w", key.StackID, err)
	}
	if out.Item == nil {
		return snapshot.StackRecord{}, fmt.Errorf("dynamostore: stack %s: %w", key.StackID, snapshot.ErrStoreNotFound)
	}
	return decodeStackRecord(out.Item)
}

// Release unlocks the stack if snapshotID holds the lock, and with uncount
// gives back the snapshot's place in the count.
func (s *Store) Release(ctx context.Context, key snapshot.StackKey, snapshotID string, uncount bool) error {
	update := "REMOVE lock_snapshot_id, lock_action, lock_since"
	values := map[string]types.AttributeValue{":id": str(snapshotID)}
	if uncount {
		update = "SET snapshot_count = snapshot_count - :one " + update
		values[":one"] = num(1)
	}
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       itemKey(stackPK(key), stackSK),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String("lock_snapshot_id = :id"),
		ExpressionAttributeValues: values,
	})
	if err != nil {
		return writeErr("release stack", key.StackID, err)
	}
	return nil
}

// CreateSnapshot writes a new snapshot record, never over an existing one.
func (s *Store) CreateSnapshot(ctx context.Context, snap snapshot.Snapshot) error {
	const op = "create"
	item := snapshotItem(snap)
	plan, err := placePlan(itemSize(item), snap.Resources)
	if err != nil {
		return opErr(op, snap.SnapshotID, err)
	}
	// Always present, even empty, so SetResource can set one entry of it.
	item["resources"] = plan.kept
	var gz []byte
	if snap.Data != nil {
		if gz, err = compressData(*snap.Data); err != nil {
			return err
		}
	}
	dataInline := gz == nil || dataFits(itemSize(item), gz)
	if plan.moved != nil || !dataInline {
		// Chunks of an existing snapshot must not be overwritten.
		if err := s.checkAbsent(ctx, snap.Key); err != nil {
			return err
		}
	}
	if plan.moved != nil {
		n, err := s.writeChunks(ctx, planChunks, snap.Key, plan.moved)
		if err != nil {
			return err
		}
		item["plan_chunks"] = num(n)
	}
	switch {
	case gz == nil:
	case dataInline:
		item["data_gz"] = &types.AttributeValueMemberB{Value: gz}
	default:
		n, err := s.writeChunks(ctx, dataChunks, snap.Key, gz)
		if err != nil {
			return err
		}
		item["data_chunks"] = num(n)
	}
	_, err = s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           &s.table,
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(PK)"),
	})
	if err != nil {
		return writeErr("create snapshot", snap.SnapshotID, err)
	}
	return nil
}

// Snapshot reads one snapshot record with its data.
func (s *Store) Snapshot(ctx context.Context, key snapshot.Key) (snapshot.Snapshot, error) {
	item, err := s.getSnapshotItem(ctx, key)
	if err != nil {
		return snapshot.Snapshot{}, err
	}
	return s.decodeSnapshot(ctx, item)
}

// SnapshotResource reads a snapshot record without its data and with one
// resource of its plan: what each check of an artefact needs, at the cost
// of the attributes it reads, not of a record of a whole large plan.
func (s *Store) SnapshotResource(ctx context.Context, key snapshot.Key, logicalID string) (snapshot.Snapshot, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            itemKey(snapshotPK(key), snapshotSK(key.SnapshotID)),
		ConsistentRead: aws.Bool(true),
		ProjectionExpression: aws.String("tenant_id, stack_id, snapshot_id, stack_name, stack_arn, #name, #action, #status," +
			" status_reason, created_at, resources.#lid"),
		ExpressionAttributeNames: map[string]string{"#name": "name", "#action": "action", "#status": "status", "#lid": logicalID},
	})
	if err != nil {
		return snapshot.Snapshot{}, fmt.Errorf("dynamostore: read snapshot %s: %w", key.SnapshotID, err)
	}
	if out.Item == nil {
		return snapshot.Snapshot{}, fmt.Errorf("dynamostore: snapshot %s: %w", key.SnapshotID, snapshot.ErrStoreNotFound)
	}
	snap, _, err := decodeSnapshot(out.Item)
	return snap, err
}

func (s *Store) getSnapshotItem(ctx context.Context, key snapshot.Key) (map[string]types.AttributeValue, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            itemKey(snapshotPK(key), snapshotSK(key.SnapshotID)),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("dynamostore: read snapshot %s: %w", key.SnapshotID, err)
	}
	if out.Item == nil {
		return nil, fmt.Errorf("dynamostore: snapshot %s: %w", key.SnapshotID, snapshot.ErrStoreNotFound)
	}
	return out.Item, nil
}

func (s *Store) decodeSnapshot(ctx context.Context, item map[string]types.AttributeValue) (snapshot.Snapshot, error) {
	snap, out, err := decodeSnapshot(item)
	if err != nil {
		return snapshot.Snapshot{}, err
	}
	if out.planChunks > 0 {
		gz, err := s.readChunks(ctx, planChunks, snap.Key, out.planChunks)
		if err != nil {
			return snapshot.Snapshot{}, err
		}
		chunked, err := decompressPlan(gz)
		if err != nil {
			return snapshot.Snapshot{}, fmt.Errorf("%w (snapshot %s)", err, snap.SnapshotID)
		}
		if snap.Resources == nil {
			snap.Resources = make(map[string]snapshot.ResourceProgress, len(chunked))
		}
		for id, p := range chunked {
			// The record's entry, if any, is the newer one.
			if _, ok := snap.Resources[id]; !ok {
				snap.Resources[id] = p
			}
		}
	}
	gz := out.dataGz
	if out.dataChunks > 0 {
		if gz, err = s.readChunks(ctx, dataChunks, snap.Key, out.dataChunks); err != nil {
			return snapshot.Snapshot{}, err
		}
	}
	if gz != nil {
		if snap.Data, err = decompressData(gz); err != nil {
			return snapshot.Snapshot{}, fmt.Errorf("%w (snapshot %s)", err, snap.SnapshotID)
		}
	}
	return snap, nil
}

// FindSnapshot finds the tenant and stack of a snapshot id through the
// BySnapshotID index. The index is eventually consistent: on AWS a record
// written a moment ago may not be found yet.
func (s *Store) FindSnapshot(ctx context.Context, snapshotID string) (snapshot.Key, error) {
	out, err := s.api.Query(ctx, &dynamodb.QueryInput{
		TableName:                 &s.table,
		IndexName:                 aws.String(snapshotIDIndex),
		KeyConditionExpression:    aws.String("GSI1PK = :id"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":id": str(snapshotSK(snapshotID))},
	})
	if err != nil {
		return snapshot.Key{}, fmt.Errorf("dynamostore: find snapshot %s: %w", snapshotID, err)
	}
	if len(out.Items) == 0 {
		return snapshot.Key{}, fmt.Errorf("dynamostore: snapshot %s: %w", snapshotID, snapshot.ErrStoreNotFound)
	}
	a := attrs{item: out.Items[0]}
	key := snapshot.Key{TenantID: a.str("tenant_id"), StackID: a.str("stack_id"), SnapshotID: snapshotID}
	return key, a.err
}

// ListSnapshots lists a stack's snapshots, newest first, with their data.
func (s *Store) ListSnapshots(ctx context.Context, key snapshot.StackKey, opts snapshot.ListOptions) (snapshot.SnapshotPage, error) {
	pk := stackPK(key)
	in := &dynamodb.QueryInput{
		TableName:              &s.table,
		KeyConditionExpression: aws.String("PK = :pk AND begins_with(SK, :snap)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":   str(pk),
			":snap": str(snapshotPrefix),
		},
		ScanIndexForward: aws.Bool(false),
		ConsistentRead:   aws.Bool(true),
	}
	if opts.Marker != "" {
		in.ExclusiveStartKey = itemKey(pk, snapshotSK(opts.Marker))
	}
	if opts.Status != "" {
		in.FilterExpression = aws.String("#status = :status")
		in.ExpressionAttributeNames = map[string]string{"#status": "status"}
		in.ExpressionAttributeValues[":status"] = str(string(opts.Status))
	}
	page := snapshot.SnapshotPage{Snapshots: []snapshot.Snapshot{}}
	full := func() bool { return opts.Limit > 0 && len(page.Snapshots) >= opts.Limit }
	for {
		// The Query's Limit counts items before the filter: with a filter,
		// a small Limit would fetch a few items per call, so let each page
		// fill up (1 MB) instead and stop once enough have matched.
		if opts.Limit > 0 && opts.Status == "" {
			in.Limit = aws.Int32(int32(min(opts.Limit-len(page.Snapshots), math.MaxInt32)))
		}
		out, err := s.api.Query(ctx, in)
		if err != nil {
			return snapshot.SnapshotPage{}, fmt.Errorf("dynamostore: list snapshots of %s: %w", key.StackID, err)
		}
		for _, item := range out.Items {
			if full() {
				break
			}
			snap, err := s.decodeSnapshot(ctx, item)
			if err != nil {
				return snapshot.SnapshotPage{}, err
			}
			page.Snapshots = append(page.Snapshots, snap)
		}
		if full() || len(out.LastEvaluatedKey) == 0 {
			return page, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// SetPlan writes the workflow's plan on an IN_PROGRESS snapshot, in the
// record or, when it is too large, partly in plan chunks (see placePlan).
func (s *Store) SetPlan(ctx context.Context, key snapshot.Key, resources map[string]snapshot.ResourceProgress) error {
	const op = "set plan of"
	item, err := s.inProgressItem(ctx, op, key)
	if err != nil {
		return err
	}
	delete(item, "resources")
	delete(item, "plan_chunks")
	plan, err := placePlan(itemSize(item), resources)
	if err != nil {
		return opErr(op, key.SnapshotID, err)
	}
	update := "SET resources = :plan REMOVE plan_chunks"
	values := map[string]types.AttributeValue{":plan": plan.kept}
	if plan.moved != nil {
		n, err := s.writeChunks(ctx, planChunks, key, plan.moved)
		if err != nil {
			return err
		}
		update = "SET resources = :plan, plan_chunks = :chunks"
		values[":chunks"] = num(n)
	}
	return s.updateCreating(ctx, op, key, inProgress, update, nil, values)
}

// SetResource updates one resource of the plan of a snapshot being created,
// IN_PROGRESS or FAILED, and leaves the others as they are. The resources
// it is called for are always in the record (see placePlan), so one
// conditional update does it, whatever other calls run at the same time.
func (s *Store) SetResource(ctx context.Context, key snapshot.Key, progress snapshot.ResourceProgress) error {
	res, err := resourceAttr(progress)
	if err != nil {
		return err
	}
	return s.updateCreating(ctx, "set resource of", key, recordable, "SET resources.#lid = :res",
		map[string]string{"#lid": progress.LogicalID},
		map[string]types.AttributeValue{":res": res})
}

// Complete moves an IN_PROGRESS snapshot to COMPLETE with its data, which
// stays in the record if the record, as Complete leaves it, still fits.
func (s *Store) Complete(ctx context.Context, key snapshot.Key, data snapshot.StackData, reason string) error {
	const op = "complete"
	item, err := s.inProgressItem(ctx, op, key)
	if err != nil {
		return err
	}
	gz, err := compressData(data)
	if err != nil {
		return err
	}
	// The record as Complete leaves it, but for its data.
	item["status"] = str(string(snapshot.StatusComplete))
	item["status_reason"] = str(reason)
	delete(item, "data_gz")
	delete(item, "data_chunks")
	// The record keeps its data in one form: drop the other, if any.
	update := "SET #status = :complete, status_reason = :reason, data_gz = :data REMOVE data_chunks"
	var value types.AttributeValue = &types.AttributeValueMemberB{Value: gz}
	if !dataFits(itemSize(item), gz) {
		n, err := s.writeChunks(ctx, dataChunks, key, gz)
		if err != nil {
			return err
		}
		update = "SET #status = :complete, status_reason = :reason, data_chunks = :data REMOVE data_gz"
		value = num(n)
	}
	values := map[string]types.AttributeValue{
		":complete": str(string(snapshot.StatusComplete)),
		":reason":   str(reason),
		":data":     value,
	}
	return s.updateCreating(ctx, op, key, inProgress, update, nil, values)
}

// Fail moves an IN_PROGRESS snapshot to FAILED with a reason.
func (s *Store) Fail(ctx context.Context, key snapshot.Key, reason string) error {
	return s.updateCreating(ctx, "fail", key, inProgress, "SET #status = :failed, status_reason = :reason", nil,
		map[string]types.AttributeValue{
			":failed": str(string(snapshot.StatusFailed)),
			":reason": str(reason),
		})
}

// The workflow changes a snapshot record only while the snapshot is being
// created: a COMPLETE snapshot, or one being deleted, is never changed. A
// FAILED one still takes artefact ids (recordable): Step Functions cannot
// stop a Lambda that is making an artefact when another resource fails the
// snapshot, and that artefact must be on the record to be deleted with it.
var (
	inProgress = []snapshot.Status{snapshot.StatusInProgress}
	recordable = []snapshot.Status{snapshot.StatusInProgress, snapshot.StatusFailed}
)

// updateCreating applies update to the record of a snapshot being created
// (action CREATE) whose status is one of statuses; a missing record fails
// the condition too. names and values are the update's own.
func (s *Store) updateCreating(ctx context.Context, op string, key snapshot.Key, statuses []snapshot.Status, update string, names map[string]string, values map[string]types.AttributeValue) error {
	allNames := map[string]string{"#status": "status", "#action": "action"}
	maps.Copy(allNames, names)
	values[":create"] = str(string(snapshot.ActionCreate))
	in := make([]string, len(statuses))
	for i, st := range statuses {
		in[i] = fmt.Sprintf(":status%d", i)
		values[in[i]] = str(string(st))
	}
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       itemKey(snapshotPK(key), snapshotSK(key.SnapshotID)),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String("#action = :create AND #status IN (" + strings.Join(in, ", ") + ")"),
		ExpressionAttributeNames:  allNames,
		ExpressionAttributeValues: values,
	})
	if err != nil {
		return writeErr(op+" snapshot", key.SnapshotID, err)
	}
	return nil
}

// inProgressItem reads the record that SetPlan or Complete is about to
// change, to size what they write: it must be IN_PROGRESS, so that a late
// retry does not write chunks of a finished snapshot. The update that
// follows checks it again, atomically.
func (s *Store) inProgressItem(ctx context.Context, op string, key snapshot.Key) (map[string]types.AttributeValue, error) {
	item, err := s.getSnapshotItem(ctx, key)
	if errors.Is(err, snapshot.ErrStoreNotFound) {
		return nil, opErr(op, key.SnapshotID, snapshot.ErrStoreConflict)
	}
	if err != nil {
		return nil, err
	}
	a := attrs{item: item}
	if a.str("status") != string(snapshot.StatusInProgress) || a.str("action") != string(snapshot.ActionCreate) {
		return nil, opErr(op, key.SnapshotID, snapshot.ErrStoreConflict)
	}
	return item, a.err
}

// checkAbsent tells, before chunks are written, whether a new record may be
// created: chunks of an existing snapshot must not be overwritten.
func (s *Store) checkAbsent(ctx context.Context, key snapshot.Key) error {
	_, err := s.getSnapshotItem(ctx, key)
	switch {
	case errors.Is(err, snapshot.ErrStoreNotFound):
		return nil
	case err == nil:
		return opErr("create", key.SnapshotID, snapshot.ErrStoreConflict)
	}
	return err
}

// opErr names the snapshot operation that failed.
func opErr(op, snapshotID string, err error) error {
	return fmt.Errorf("dynamostore: %s snapshot %s: %w", op, snapshotID, err)
}
