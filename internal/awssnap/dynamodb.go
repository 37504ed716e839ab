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

// keyBackupARN is the key of a table's resource data.
const keyBackupARN = "backup_arn"

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
	arn, err := findBackup(ctx, api, table, name)
	if err != nil {
		return nil, classify(err, subject)
	}
	if arn == "" {
		out, err := api.CreateBackup(ctx, &dynamodb.CreateBackupInput{TableName: aws.String(table), BackupName: aws.String(name)})
		if err != nil {
			return nil, classify(err, subject)
		}
		if out.BackupDetails == nil {
			return nil, fmt.Errorf("CreateBackup of %s returned no backup details", table)
		}
		arn = aws.ToString(out.BackupDetails.BackupArn)
	}
	return snapshot.ResourceData{keyBackupARN: arn}, nil
}

// findBackup returns the ARN of the table's backup of that name that is
// not deleted, or "".
func findBackup(ctx context.Context, api DynamoDBAPI, table, name string) (string, error) {
	in := &dynamodb.ListBackupsInput{TableName: aws.String(table), BackupType: types.BackupTypeFilterUser}
	for {
		out, err := api.ListBackups(ctx, in)
		if err != nil {
			return "", err
		}
		for _, b := range out.BackupSummaries {
			if aws.ToString(b.BackupName) == name && b.BackupStatus != types.BackupStatusDeleted {
				return aws.ToString(b.BackupArn), nil
			}
		}
		if out.LastEvaluatedBackupArn == nil {
			return "", nil
		}
		in.ExclusiveStartBackupArn = out.LastEvaluatedBackupArn
	}
}

// Check reads the status of the backup.
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
		return snapshot.Progress{Done: true}, nil
	case types.BackupStatusCreating:
		return snapshot.Progress{}, nil
	}
	return snapshot.Progress{Failure: "DynamoDB backup " + arn + " is " + strings.ToLower(string(status))}, nil
}

// Delete deletes the backup; one already gone is deleted.
func (t tables) Delete(ctx context.Context, tenantID string, data snapshot.ResourceData) error {
	arn := dataString(data, keyBackupARN)
	if arn == "" {
		return nil
	}
	api, err := t.client(ctx, tenantID)
	if err != nil {
		return fmt.Errorf("DynamoDB client of tenant %s: %w", tenantID, err)
	}
	_, err = api.DeleteBackup(ctx, &dynamodb.DeleteBackupInput{BackupArn: aws.String(arn)})
	if err == nil || errorCode(err) == "BackupNotFoundException" {
		return nil
	}
	return classify(err, "the DynamoDB backup "+arn)
}

// backupName names a backup: 3-255 letters, digits and _.- .
func backupName(req snapshot.ArtefactRequest) string {
	return artefactName(req, 255, func(r rune) bool {
		return isAlphanumeric(r) || strings.ContainsRune("_.-", r)
	})
}
