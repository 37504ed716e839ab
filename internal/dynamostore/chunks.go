package dynamostore

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// An item holds at most 400 KB (itemSize tells how DynamoDB counts). The
// store keeps a snapshot record under maxRecordSize, by its own estimate:
// what would not fit (the data, or the part of a large plan the workflow
// does not change; see placePlan) goes, as gzip JSON, into chunk items of
// the same partition. The margin above maxRecordSize absorbs the estimate's
// error and writes that race with the decision.
const (
	maxRecordSize = 350 << 10
	chunkSize     = 300 << 10
)

// chunkKind is one kind of chunked value: its chunk items' keys are
// <prefix><snapshot id>#<000n> and hold its bytes in part.
type chunkKind struct {
	name   string // for messages
	prefix string
	part   string
}

var (
	dataChunks = chunkKind{name: "data", prefix: "DATA#", part: "data_part"}
	planChunks = chunkKind{name: "plan", prefix: "PLAN#", part: "plan_part"}
)

func (k chunkKind) sk(snapshotID string, n int) string {
	return fmt.Sprintf("%s%s#%04d", k.prefix, snapshotID, n)
}

// dataFits tells whether compressed data may stay in a record that takes
// recordSize bytes without it.
func dataFits(recordSize int, gz []byte) bool {
	return recordSize+attrSize("data_gz", &types.AttributeValueMemberB{Value: gz}) <= maxRecordSize
}

func compressJSON(what string, v any) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(v); err != nil {
		return nil, fmt.Errorf("dynamostore: encode %s: %w", what, err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("dynamostore: compress %s: %w", what, err)
	}
	return buf.Bytes(), nil
}

func decompressJSON(what string, gz []byte, v any) error {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return fmt.Errorf("dynamostore: decompress %s: %w", what, err)
	}
	if err := json.NewDecoder(zr).Decode(v); err != nil {
		return fmt.Errorf("dynamostore: decode %s: %w", what, err)
	}
	return nil
}

func compressData(data snapshot.StackData) ([]byte, error) { return compressJSON("data", data) }

func decompressData(gz []byte) (*snapshot.StackData, error) {
	var data snapshot.StackData
	if err := decompressJSON("data", gz, &data); err != nil {
		return nil, err
	}
	return &data, nil
}

// writeChunks cuts gz into chunk items of kind and returns their number.
// Callers write them before the record that points at them, so that a
// record never points at chunks that are not there yet. They are written
// over whatever an earlier, unfinished write left; two writes of one
// snapshot's chunks at the same moment would mix them, and do not happen:
// the workflow runs one execution per snapshot, and its Lambda times out
// before its task does.
func (s *Store) writeChunks(ctx context.Context, kind chunkKind, key snapshot.Key, gz []byte) (int, error) {
	n := 0
	for rest := gz; len(rest) > 0; {
		part := rest[:min(chunkSize, len(rest))]
		rest = rest[len(part):]
		n++
		item := itemKey(snapshotPK(key), kind.sk(key.SnapshotID, n))
		item[kind.part] = &types.AttributeValueMemberB{Value: part}
		if _, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item}); err != nil {
			return 0, fmt.Errorf("dynamostore: write %s chunk %d of %s: %w", kind.name, n, key.SnapshotID, err)
		}
	}
	return n, nil
}

// readChunks reads back the n chunks of kind of a snapshot. The key range
// names exactly chunks 1..n, so chunks left over by an earlier write that
// never completed are not read.
func (s *Store) readChunks(ctx context.Context, kind chunkKind, key snapshot.Key, n int) ([]byte, error) {
	in := &dynamodb.QueryInput{
		TableName:              &s.table,
		KeyConditionExpression: aws.String("PK = :pk AND SK BETWEEN :first AND :last"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":    str(snapshotPK(key)),
			":first": str(kind.sk(key.SnapshotID, 1)),
			":last":  str(kind.sk(key.SnapshotID, n)),
		},
		ConsistentRead: aws.Bool(true),
	}
	var gz []byte
	read := 0
	for {
		out, err := s.api.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("dynamostore: read %s chunks of %s: %w", kind.name, key.SnapshotID, err)
		}
		for _, item := range out.Items {
			read++
			a := attrs{item: item}
			if sk := a.str(attrSK); sk != kind.sk(key.SnapshotID, read) {
				return nil, fmt.Errorf("dynamostore: %s of %s: chunk %d is missing (found %s)", kind.name, key.SnapshotID, read, sk)
			}
			gz = append(gz, a.bytes(kind.part)...)
			if a.err != nil {
				return nil, a.err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	if read != n {
		return nil, fmt.Errorf("dynamostore: %s of %s: %d of %d chunks found", kind.name, key.SnapshotID, read, n)
	}
	return gz, nil
}
