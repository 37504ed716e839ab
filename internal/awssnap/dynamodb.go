package awssnap

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// DynamoDBAPI is the part of the DynamoDB client the table snapshotter
// calls.
type DynamoDBAPI interface {
	ListBackups(ctx context.Context, in *dynamodb.ListBackupsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ListBackupsOutput, error)
	CreateBackup(ctx context.Context, in *dynamodb.CreateBackupInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateBackupOutput, error)
	DescribeBackup(ctx context.Context, in *dynamodb.DescribeBackupInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeBackupOutput, error)
	DeleteBackup(ctx context.Context, in *dynamodb.DeleteBackupInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteBackupOutput, error)
}

// Keys of a table's resource data.
const (
	keyBackupARN = "backup_arn"
	// Other backups of the table's request, made by a retried start that
	// did not see the first one's yet: Delete removes them too.
	keyExtraBackupARNs = "extra_backup_arns"
	// The table and the name of the request's backups, recorded by Start:
	// Delete looks up every backup of the request by them, extra ones
	// that no Check recorded included.
	keyTableName  = "table_name"
	keyBackupName = "backup_name"
)

// tables backs up an AWS::DynamoDB::Table with an on-demand backup.
//
// CreateBackup takes no tags, so the backup's name carries the ids of the
// snapshot and the resource instead (stacksnap-<snapshot id>-<logical id>);
// the tenant is the account the backup is in, the stack the one of its
// table.
type tables struct {
	client func(ctx context.Context, tenantID string) (DynamoDBAPI, error)
}

// Start backs up the table, or returns the backup an earlier attempt made:
// backup names are not unique, so it looks among the table's backups for
// its name before making one.
func (t tables) Start(ctx context.Context, req snapshot.ArtefactRequest) (snapshot.ResourceData, error) {
	api, err := t.client(ctx, req.TenantID)
	if err != nil {
		return nil, fmt.Errorf("DynamoDB client of tenant %s: %w", req.TenantID, err)
	}
	table := req.Resource.PhysicalID
	subject := "the table " + table
	name := backupName(req)
	found, err := findBackups(ctx, api, table, name)
	if err != nil {
		return nil, classify(err, subject)
	}
	if len(found) > 0 {
		return tableData(table, name, found[0]), nil
	}
	out, err := api.CreateBackup(ctx, &dynamodb.CreateBackupInput{TableName: aws.String(table), BackupName: aws.String(name)})
	if err != nil {
		return nil, classify(err, subject)
	}
	if out.BackupDetails == nil {
		return nil, fmt.Errorf("CreateBackup of %s returned no backup details", table)
	}
	return tableData(table, name, aws.ToString(out.BackupDetails.BackupArn)), nil
}

// tableData is the resource data Start records: the backup, and the
// table and name by which Delete finds every backup of the request.
func tableData(table, name, arn string) snapshot.ResourceData {
	return snapshot.ResourceData{keyBackupARN: arn, keyTableName: table, keyBackupName: name}
}

// findBackups returns the ARNs of the table's backups of that name that
// are not deleted.
func findBackups(ctx context.Context, api DynamoDBAPI, table, name string) ([]string, error) {
	in := &dynamodb.ListBackupsInput{TableName: aws.String(table), BackupType: types.BackupTypeFilterUser}
	var arns []string
	for {
		out, err := api.ListBackups(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, b := range out.BackupSummaries {
			if aws.ToString(b.BackupName) == name && b.BackupStatus != types.BackupStatusDeleted {
				arns = append(arns, aws.ToString(b.BackupArn))
			}
		}
		if out.LastEvaluatedBackupArn == nil {
			return arns, nil
		}
		in.ExclusiveStartBackupArn = out.LastEvaluatedBackupArn
	}
}

// Check reads the status of the backup. Once it is available, it also
// records any other backup of the request's name (see done).
func (t tables) Check(ctx context.Context, req snapshot.ArtefactRequest, data snapshot.ResourceData) (snapshot.Progress, error) {
	arn := dataString(data, keyBackupARN)
	if arn == "" {
		return snapshot.Progress{}, fmt.Errorf("resource data of %s has no %s", req.Resource.LogicalID, keyBackupARN)
	}
	api, err := t.client(ctx, req.TenantID)
	if err != nil {
		return snapshot.Progress{}, fmt.Errorf("DynamoDB client of tenant %s: %w", req.TenantID, err)
	}
	out, err := api.DescribeBackup(ctx, &dynamodb.DescribeBackupInput{BackupArn: aws.String(arn)})
	if errorCode(err) == "BackupNotFoundException" {
		return snapshot.Progress{Failure: "DynamoDB backup " + arn + " no longer exists"}, nil
	}
	if err != nil {
		return snapshot.Progress{}, classify(err, "the DynamoDB backup "+arn)
	}
	var status types.BackupStatus
	if out.BackupDescription != nil && out.BackupDescription.BackupDetails != nil {
		status = out.BackupDescription.BackupDetails.BackupStatus
	}
	switch status {
	case types.BackupStatusAvailable:
		table := req.Resource.PhysicalID
		found, err := findBackups(ctx, api, table, backupName(req))
		if err != nil {
			return snapshot.Progress{}, classify(err, "the table "+table)
		}
		return done(data, keyBackupARN, found, keyExtraBackupARNs), nil
	case types.BackupStatusCreating:
		return snapshot.Progress{}, nil
	}
	return snapshot.Progress{Failure: "DynamoDB backup " + arn + " is " + strings.ToLower(string(status))}, nil
}

// Delete deletes the backup, any extra ones Check recorded, and every
// other backup of the table with the request's name: a retried start may
// have made one that no Check recorded, as the snapshot failed before.
// Each is deleted once; one already gone is deleted. Data recorded before
// Start kept the table and name has no lookup: only its recorded backups
// go.
func (t tables) Delete(ctx context.Context, tenantID string, data snapshot.ResourceData) error {
	arn := dataString(data, keyBackupARN)
	if arn == "" {
		return nil
	}
	api, err := t.client(ctx, tenantID)
	if err != nil {
		return fmt.Errorf("DynamoDB client of tenant %s: %w", tenantID, err)
	}
	arns := append([]string{arn}, dataStrings(data, keyExtraBackupARNs)...)
	table, name := dataString(data, keyTableName), dataString(data, keyBackupName)
	if table != "" && name != "" {
		found, err := findBackups(ctx, api, table, name)
		if err != nil {
			return classify(err, "the table "+table)
		}
		arns = append(arns, found...)
	}
	for _, b := range unique(arns) {
		_, err := api.DeleteBackup(ctx, &dynamodb.DeleteBackupInput{BackupArn: aws.String(b)})
		if err != nil && errorCode(err) != "BackupNotFoundException" {
			return classify(err, "the DynamoDB backup "+b)
		}
	}
	return nil
}

// backupName names a backup: 3-255 letters, digits and _.- .
func backupName(req snapshot.ArtefactRequest) string {
	return artefactName(req, 255, func(r rune) bool {
		return isAlphanumeric(r) || strings.ContainsRune("_.-", r)
	})
}
