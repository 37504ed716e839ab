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

// A snapshot's data is JSON, gzip-compressed. It stays in the snapshot
// record when it is small enough; otherwise it is cut into chunk items in
// the same partition. Either way an item stays under DynamoDB's 400 KB,
// with room left for keys and the record's other attributes: the plan of a
// stack of 500 resources (CloudFormation's limit) takes about 150 KB, so
// inline data stops at 200 KB.
const (
	maxInlineData = 200 << 10
	chunkSize     = 300 << 10
)

func compressData(data snapshot.StackData) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(data); err != nil {
		return nil, fmt.Errorf("dynamostore: encode data: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("dynamostore: compress data: %w", err)
	}
	return buf.Bytes(), nil
}

func decompressData(gz []byte) (*snapshot.StackData, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("dynamostore: decompress data: %w", err)
	}
	var data snapshot.StackData
	if err := json.NewDecoder(zr).Decode(&data); err != nil {
		return nil, fmt.Errorf("dynamostore: decode data: %w", err)
	}
	return &data, nil
}

// placeData returns the attribute that gives a record its data: data_gz
// with the data itself, or data_chunks with the number of chunk items,
// which it writes first (after mayWrite agrees), so that a record never
// points at chunks that are not there yet.
func (s *Store) placeData(ctx context.Context, key snapshot.Key, data snapshot.StackData, mayWrite func(context.Context) error) (string, types.AttributeValue, error) {
	gz, err := compressData(data)
	if err != nil {
		return "", nil, err
	}
	if len(gz) <= maxInlineData {
		return "data_gz", &types.AttributeValueMemberB{Value: gz}, nil
	}
	if err := mayWrite(ctx); err != nil {
		return "", nil, err
	}
	n := 0
	for rest := gz; len(rest) > 0; {
		part := rest[:min(chunkSize, len(rest))]
		rest = rest[len(part):]
		n++
		item := itemKey(snapshotPK(key), chunkSK(key.SnapshotID, n))
		item["data_part"] = &types.AttributeValueMemberB{Value: part}
		if _, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item}); err != nil {
			return "", nil, fmt.Errorf("dynamostore: write data chunk %d of %s: %w", n, key.SnapshotID, err)
		}
	}
	return "data_chunks", num(n), nil
}

// readChunks reads back the n chunks of a snapshot's compressed data. The
// key range names exactly chunks 1..n, so chunks left over by an earlier
// write that never completed are not read.
func (s *Store) readChunks(ctx context.Context, key snapshot.Key, n int) ([]byte, error) {
	in := &dynamodb.QueryInput{
		TableName:              &s.table,
		KeyConditionExpression: aws.String("PK = :pk AND SK BETWEEN :first AND :last"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":    str(snapshotPK(key)),
			":first": str(chunkSK(key.SnapshotID, 1)),
			":last":  str(chunkSK(key.SnapshotID, n)),
		},
		ConsistentRead: aws.Bool(true),
	}
	var gz []byte
	read := 0
	for {
		out, err := s.api.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("dynamostore: read data chunks of %s: %w", key.SnapshotID, err)
		}
		for _, item := range out.Items {
			read++
			a := attrs{item: item}
			if sk := a.str(attrSK); sk != chunkSK(key.SnapshotID, read) {
				return nil, fmt.Errorf("dynamostore: data of %s: chunk %d is missing (found %s)", key.SnapshotID, read, sk)
			}
			gz = append(gz, a.bytes("data_part")...)
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
		return nil, fmt.Errorf("dynamostore: data of %s: %d of %d chunks found", key.SnapshotID, read, n)
	}
	return gz, nil
}
