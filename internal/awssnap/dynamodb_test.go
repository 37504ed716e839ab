package awssnap

import (
	"maps"
	"testing"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

func TestTable(t *testing.T) {
	const (
		table     = "Orders"
		name      = "stacksnap-" + snapshotID + "-OrdersTable"
		arn       = "arn:aws:dynamodb:us-east-1:123456789012:table/Orders/backup/01738627998000-a1b2c3d4"
		firstPage = "arn:aws:dynamodb:us-east-1:123456789012:table/Orders/backup/01738000000000-0f0f0f0f"
		// Made by a retried start whose lookup lagged.
		extraARN = "arn:aws:dynamodb:us-east-1:123456789012:table/Orders/backup/01738628040000-e5f6a7b8"
	)
	req := request(TypeTable, "OrdersTable", table)
	made := snapshot.ResourceData{"backup_arn": arn, "table_name": table, "backup_name": name}
	withExtra := maps.Clone(made)
	withExtra["extra_backup_arns"] = []string{extraARN}
	// Data recorded before Start kept the table and name: Delete has no
	// lookup.
	legacy := snapshot.ResourceData{"backup_arn": arn}
	legacyWithExtra := snapshot.ResourceData{"backup_arn": arn, "extra_backup_arns": []string{extraARN}}
	list := func(status int, file string) exchange {
		return exchange{action: "ListBackups", status: status, file: file, params: map[string]string{"TableName": table, "BackupType": "USER"}}
	}
	create := func(status int, file string) exchange {
		return exchange{action: "CreateBackup", status: status, file: file, params: map[string]string{"TableName": table, "BackupName": name}}
	}
	describe := func(status int, file string) exchange {
		return exchange{action: "DescribeBackup", status: status, file: file, params: map[string]string{"BackupArn": arn}}
	}
	del := func(backup string, status int, file string) exchange {
		return exchange{action: "DeleteBackup", status: status, file: file, params: map[string]string{"BackupArn": backup}}
	}
	nextPage := exchange{action: "ListBackups", file: "dynamodb-list-backups.page2.json", params: map[string]string{"TableName": table, "ExclusiveStartBackupArn": firstPage}}
	runCases(t, []stubCase{
		{
			name:   "Start",
			call:   start(req),
			script: []exchange{list(200, "dynamodb-list-backups.empty.json"), create(200, "dynamodb-create-backup.json")},
			want:   made,
		},
		{
			name: "RetriedStartAdoptsBackupOfSameName",
			call: start(req),
			script: []exchange{
				list(200, "dynamodb-list-backups.page1.json"),
				nextPage,
			},
			want: made,
		},
		{
			name:    "ErrLimitExceededException",
			call:    start(req),
			script:  []exchange{list(200, "dynamodb-list-backups.empty.json"), create(400, "dynamodb-error.LimitExceededException.json")},
			wantErr: busyErr("LimitExceededException: the account has too many DynamoDB backups and table operations in progress"),
		},
		{
			name:    "ErrThrottlingException",
			call:    start(req),
			script:  []exchange{list(400, "dynamodb-error.ThrottlingException.json")},
			wantErr: throttled("ThrottlingException: Rate of requests exceeds the allowed throughput."),
		},
		{
			name:    "ErrTableNotFoundException",
			call:    start(req),
			script:  []exchange{list(200, "dynamodb-list-backups.empty.json"), create(400, "dynamodb-error.TableNotFoundException.json")},
			wantErr: permanentErr("TableNotFoundException: the table Orders does not exist"),
		},
		{
			name:   "CheckPending",
			call:   check(req, made),
			script: []exchange{describe(200, "dynamodb-describe-backup.creating.json")},
			want:   snapshot.Progress{},
		},
		{
			name: "CheckDone",
			call: check(req, made),
			script: []exchange{
				describe(200, "dynamodb-describe-backup.available.json"),
				list(200, "dynamodb-list-backups.page1.json"),
				nextPage, // our backup, and a deleted one of the same name
			},
			want: snapshot.Progress{Done: true},
		},
		{
			name:   "CheckDoneRecordsExtraBackupOfRetriedStart",
			call:   check(req, made),
			script: []exchange{describe(200, "dynamodb-describe-backup.available.json"), list(200, "dynamodb-list-backups.retried.json")},
			want:   snapshot.Progress{Done: true, Data: withExtra},
		},
		{
			name:   "CheckDoneRecordsExtraBackupInLegacyData",
			call:   check(req, legacy),
			script: []exchange{describe(200, "dynamodb-describe-backup.available.json"), list(200, "dynamodb-list-backups.retried.json")},
			want:   snapshot.Progress{Done: true, Data: legacyWithExtra},
		},
		{
			name:   "CheckDeleted",
			call:   check(req, made),
			script: []exchange{describe(200, "dynamodb-describe-backup.deleted.json")},
			want:   snapshot.Progress{Failure: "DynamoDB backup " + arn + " is deleted"},
		},
		{
			name:   "CheckGone",
			call:   check(req, made),
			script: []exchange{describe(400, "dynamodb-error.BackupNotFoundException.json")},
			want:   snapshot.Progress{Failure: "DynamoDB backup " + arn + " no longer exists"},
		},
		{
			// Two pages: someone else's backup, then a deleted one of
			// our name (skipped) and ours.
			name:   "Delete",
			call:   remove(made),
			script: []exchange{list(200, "dynamodb-list-backups.page1.json"), nextPage, del(arn, 200, "dynamodb-delete-backup.json")},
		},
		{
			name:   "DeleteAlreadyDeleted",
			call:   remove(made),
			script: []exchange{list(200, "dynamodb-list-backups.empty.json"), del(arn, 400, "dynamodb-error.BackupNotFoundException.json")},
		},
		{
			// The snapshot failed before any Check recorded the extra
			// backup of a retried start: the lookup by name finds it.
			name: "DeleteFindsUnrecordedBackupOfRetriedStart",
			call: remove(made),
			script: []exchange{
				list(200, "dynamodb-list-backups.retried.json"),
				del(arn, 200, "dynamodb-delete-backup.json"),
				del(extraARN, 200, "dynamodb-delete-backup.json"),
			},
		},
		{
			name: "DeleteRemovesExtraBackupOnce",
			call: remove(withExtra),
			script: []exchange{
				list(200, "dynamodb-list-backups.retried.json"),
				del(arn, 200, "dynamodb-delete-backup.json"),
				del(extraARN, 200, "dynamodb-delete-backup.json"),
			},
		},
		{
			name: "RetriedDeleteRemovesStoredExtraBackup",
			call: remove(roundTrip(t, withExtra)),
			script: []exchange{
				list(200, "dynamodb-list-backups.empty.json"),
				del(arn, 400, "dynamodb-error.BackupNotFoundException.json"),
				del(extraARN, 200, "dynamodb-delete-backup.json"),
			},
		},
		{
			name:    "ErrDeleteLookupThrottled",
			call:    remove(made),
			script:  []exchange{list(400, "dynamodb-error.ThrottlingException.json")},
			wantErr: throttled("ThrottlingException: Rate of requests exceeds the allowed throughput."),
		},
		{
			name:   "DeleteLegacyData",
			call:   remove(legacy),
			script: []exchange{del(arn, 200, "dynamodb-delete-backup.json")},
		},
		{
			name:   "DeleteLegacyDataRemovesStoredExtraBackup",
			call:   remove(roundTrip(t, legacyWithExtra)),
			script: []exchange{del(arn, 400, "dynamodb-error.BackupNotFoundException.json"), del(extraARN, 200, "dynamodb-delete-backup.json")},
		},
		{
			name: "DeleteWithoutArtefact",
			call: remove(snapshot.ResourceData{}),
		},
	}, func(t *testing.T, script []exchange) snapshot.Snapshotter {
		return New(Options{DynamoDB: dynamoDBClient(t, script...)})[TypeTable]
	})
}
