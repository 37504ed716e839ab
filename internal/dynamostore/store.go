// Package dynamostore keeps stack and snapshot records in one DynamoDB
// table: it implements snapshot.Store.
//
// Items, all under the stack's partition PK=STACK#<tenant>#<stackID>:
//
//	SK=STACK                 the stack record: count of snapshots, lock
//	SK=SNAP#<id>             a snapshot record; GSI1PK=SNAP#<id> finds it by id
//	SK=DATA#<id>#<000n>      chunk n of a snapshot's data, when too large
//	                         to stay in the record
package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"math"

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
	item, err := snapshotItem(snap)
	if err != nil {
		return err
	}
	if snap.Data != nil {
		attr, value, err := s.placeData(ctx, snap.Key, *snap.Data, func(ctx context.Context) error {
			return s.checkAbsent(ctx, snap.Key)
		})
		if err != nil {
			return err
		}
		item[attr] = value
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
	snap, gz, chunks, err := decodeSnapshot(item)
	if err != nil {
		return snapshot.Snapshot{}, err
	}
	if chunks > 0 {
		if gz, err = s.readChunks(ctx, snap.Key, chunks); err != nil {
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

// SetPlan writes the workflow's plan on an IN_PROGRESS snapshot.
func (s *Store) SetPlan(ctx context.Context, key snapshot.Key, resources map[string]snapshot.ResourceProgress) error {
	plan, err := resourcesAttr(resources)
	if err != nil {
		return err
	}
	return s.updateInProgress(ctx, "set plan of", key, "SET resources = :plan", nil,
		map[string]types.AttributeValue{":plan": plan})
}

// SetResource updates one resource of an IN_PROGRESS snapshot's plan, and
// leaves the others as they are.
func (s *Store) SetResource(ctx context.Context, key snapshot.Key, progress snapshot.ResourceProgress) error {
	res, err := resourceAttr(progress)
	if err != nil {
		return err
	}
	return s.updateInProgress(ctx, "set resource of", key, "SET resources.#lid = :res",
		map[string]string{"#lid": progress.LogicalID},
		map[string]types.AttributeValue{":res": res})
}

// Complete moves an IN_PROGRESS snapshot to COMPLETE with its data.
func (s *Store) Complete(ctx context.Context, key snapshot.Key, data snapshot.StackData, reason string) error {
	attr, value, err := s.placeData(ctx, key, data, func(ctx context.Context) error {
		return s.checkInProgress(ctx, key)
	})
	if err != nil {
		return err
	}
	// The record keeps its data in one form: drop the other, if any.
	update := "SET #status = :complete, status_reason = :reason, data_gz = :data REMOVE data_chunks"
	if attr == "data_chunks" {
		update = "SET #status = :complete, status_reason = :reason, data_chunks = :data REMOVE data_gz"
	}
	return s.updateInProgress(ctx, "complete", key, update, nil,
		map[string]types.AttributeValue{
			":complete": str(string(snapshot.StatusComplete)),
			":reason":   str(reason),
			":data":     value,
		})
}

// Fail moves an IN_PROGRESS snapshot to FAILED with a reason.
func (s *Store) Fail(ctx context.Context, key snapshot.Key, reason string) error {
	return s.updateInProgress(ctx, "fail", key, "SET #status = :failed, status_reason = :reason", nil,
		map[string]types.AttributeValue{
			":failed": str(string(snapshot.StatusFailed)),
			":reason": str(reason),
		})
}

// inProgressCondition holds for a snapshot being created and nothing else:
// a finished snapshot, or one being deleted, is never changed by the
// workflow. A missing record fails it too.
const inProgressCondition = "#status = :inprogress AND #action = :create"

// updateInProgress applies update to a snapshot record under
// inProgressCondition; names and values are the update's own.
func (s *Store) updateInProgress(ctx context.Context, op string, key snapshot.Key, update string, names map[string]string, values map[string]types.AttributeValue) error {
	allNames := map[string]string{"#status": "status", "#action": "action"}
	for k, v := range names {
		allNames[k] = v
	}
	values[":inprogress"] = str(string(snapshot.StatusInProgress))
	values[":create"] = str(string(snapshot.ActionCreate))
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       itemKey(snapshotPK(key), snapshotSK(key.SnapshotID)),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String(inProgressCondition),
		ExpressionAttributeNames:  allNames,
		ExpressionAttributeValues: values,
	})
	if err != nil {
		return writeErr(op+" snapshot", key.SnapshotID, err)
	}
	return nil
}

// checkInProgress tells, before data chunks are written, whether Complete
// may still change the record: a late retry must not overwrite the chunks
// of a snapshot that is already finished. (Two Completes of one snapshot at
// the same moment could still both write chunks; the workflow runs one
// execution per snapshot, so they do not happen.)
func (s *Store) checkInProgress(ctx context.Context, key snapshot.Key) error {
	status, action, found, err := s.snapshotState(ctx, key)
	if err != nil {
		return err
	}
	if !found || status != snapshot.StatusInProgress || action != snapshot.ActionCreate {
		return fmt.Errorf("dynamostore: complete snapshot %s: %w", key.SnapshotID, snapshot.ErrStoreConflict)
	}
	return nil
}

// checkAbsent tells, before data chunks are written, whether a new record
// may be created: chunks of an existing snapshot must not be overwritten.
func (s *Store) checkAbsent(ctx context.Context, key snapshot.Key) error {
	_, _, found, err := s.snapshotState(ctx, key)
	if err != nil {
		return err
	}
	if found {
		return fmt.Errorf("dynamostore: create snapshot %s: %w", key.SnapshotID, snapshot.ErrStoreConflict)
	}
	return nil
}

// snapshotState reads the status and action of a snapshot record, if any.
func (s *Store) snapshotState(ctx context.Context, key snapshot.Key) (snapshot.Status, snapshot.Action, bool, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                &s.table,
		Key:                      itemKey(snapshotPK(key), snapshotSK(key.SnapshotID)),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String("#status, #action"),
		ExpressionAttributeNames: map[string]string{"#status": "status", "#action": "action"},
	})
	if err != nil {
		return "", "", false, fmt.Errorf("dynamostore: read snapshot %s: %w", key.SnapshotID, err)
	}
	if out.Item == nil {
		return "", "", false, nil
	}
	a := attrs{item: out.Item}
	return snapshot.Status(a.str("status")), snapshot.Action(a.str("action")), true, a.err
}
