package awssnap

import (
	"testing"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// rdsOurTags are the Tags parameters of an RDS create call carrying the
// four stacksnap tags of a request for logicalID.
func rdsOurTags(logicalID string) map[string]string {
	return map[string]string{
		"Tags.Tag.1.Key": tagStackID, "Tags.Tag.1.Value": stackID,
		"Tags.Tag.2.Key": tagSnapshotID, "Tags.Tag.2.Value": snapshotID,
		"Tags.Tag.3.Key": tagTenantID, "Tags.Tag.3.Value": tenant,
		"Tags.Tag.4.Key": tagLogicalID, "Tags.Tag.4.Value": logicalID,
	}
}

func TestDBInstance(t *testing.T) {
	const (
		instanceID = "mysqldb-02"
		id         = "stacksnap-" + snapshotID + "-database"
	)
	req := request(TypeDBInstance, "Database", instanceID)
	made := snapshot.ResourceData{"db_snapshot_identifier": id}
	covered := snapshot.ResourceData{"covered_by_cluster": "aurora-cluster-1"}
	describeInstance := func(status int, file string) exchange {
		return exchange{action: "DescribeDBInstances", status: status, file: file, params: map[string]string{"DBInstanceIdentifier": instanceID}}
	}
	create := func(status int, file string) exchange {
		return exchange{action: "CreateDBSnapshot", status: status, file: file, params: merge(map[string]string{
			"DBSnapshotIdentifier": id,
			"DBInstanceIdentifier": instanceID,
		}, rdsOurTags("Database"))}
	}
	describe := func(status int, file string) exchange {
		return exchange{action: "DescribeDBSnapshots", status: status, file: file, params: map[string]string{"DBSnapshotIdentifier": id}}
	}
	del := func(status int, file string) exchange {
		return exchange{action: "DeleteDBSnapshot", status: status, file: file, params: map[string]string{"DBSnapshotIdentifier": id}}
	}
	runCases(t, []stubCase{
		{
			name:   "Start",
			call:   start(req),
			script: []exchange{describeInstance(200, "rds-describe-db-instances.xml"), create(200, "rds-create-db-snapshot.xml")},
			want:   made,
		},
		{
			name: "RetriedStartAdoptsExistingSnapshot",
			call: start(req),
			script: []exchange{
				describeInstance(200, "rds-describe-db-instances.xml"),
				create(400, "rds-error.DBSnapshotAlreadyExists.xml"),
				describe(200, "rds-describe-db-snapshots.creating.xml"),
			},
			want: made,
		},
		{
			name: "ErrDBSnapshotAlreadyExistsOfAnother",
			call: start(req),
			script: []exchange{
				describeInstance(200, "rds-describe-db-instances.xml"),
				create(400, "rds-error.DBSnapshotAlreadyExists.xml"),
				describe(200, "rds-describe-db-snapshots.other.xml"),
			},
			wantErr: permanentErr("DBSnapshotAlreadyExists: the DB snapshot " + id + " already exists and was not made by this snapshot; rename or delete it"),
		},
		{
			name: "InstanceOfClusterIsCovered",
			call: start(request(TypeDBInstance, "Database", "aurora-instance-1")),
			script: []exchange{{action: "DescribeDBInstances", file: "rds-describe-db-instances.in-cluster.xml",
				params: map[string]string{"DBInstanceIdentifier": "aurora-instance-1"}}},
			want: covered,
		},
		{
			name:    "ErrSnapshotQuotaExceeded",
			call:    start(req),
			script:  []exchange{describeInstance(200, "rds-describe-db-instances.xml"), create(400, "rds-error.SnapshotQuotaExceeded.xml")},
			wantErr: permanentErr("SnapshotQuotaExceeded: the account has reached its quota of RDS snapshots: delete some, or ask AWS for a higher quota"),
		},
		{
			name:    "ErrInvalidDBInstanceState",
			call:    start(req),
			script:  []exchange{describeInstance(200, "rds-describe-db-instances.xml"), create(400, "rds-error.InvalidDBInstanceState.xml")},
			wantErr: busyErr("InvalidDBInstanceState: the DB instance mysqldb-02 is not available: it may be in its backup window, or being modified or maintained"),
		},
		{
			name:    "ErrThrottling",
			call:    start(req),
			script:  []exchange{describeInstance(400, "rds-error.Throttling.xml")},
			wantErr: throttled("Throttling: Rate exceeded"),
		},
		{
			name:    "ErrDBInstanceNotFound",
			call:    start(req),
			script:  []exchange{describeInstance(404, "rds-error.DBInstanceNotFound.xml")},
			wantErr: permanentErr("DBInstanceNotFound: the DB instance mysqldb-02 does not exist"),
		},
		{
			name:   "CheckPending",
			call:   check(req, made),
			script: []exchange{describe(200, "rds-describe-db-snapshots.creating.xml")},
			want:   snapshot.Progress{},
		},
		{
			name:   "CheckDone",
			call:   check(req, made),
			script: []exchange{describe(200, "rds-describe-db-snapshots.available.xml")},
			want:   snapshot.Progress{Done: true},
		},
		{
			name:   "CheckFailed",
			call:   check(req, made),
			script: []exchange{describe(200, "rds-describe-db-snapshots.failed.xml")},
			want:   snapshot.Progress{Failure: "DB snapshot " + id + " failed"},
		},
		{
			name:   "CheckGone",
			call:   check(req, made),
			script: []exchange{describe(404, "rds-error.DBSnapshotNotFound.xml")},
			want:   snapshot.Progress{Failure: "DB snapshot " + id + " no longer exists"},
		},
		{
			name: "CheckCoveredByCluster",
			call: check(req, covered),
			want: snapshot.Progress{Done: true},
		},
		{
			name:   "Delete",
			call:   remove(made),
			script: []exchange{del(200, "rds-delete-db-snapshot.xml")},
		},
		{
			name:   "DeleteAlreadyDeleted",
			call:   remove(made),
			script: []exchange{del(404, "rds-error.DBSnapshotNotFound.xml")},
		},
		{
			name: "DeleteCoveredByCluster",
			call: remove(covered),
		},
	}, func(t *testing.T, script []exchange) snapshot.Snapshotter {
		return New(Options{RDS: rdsClient(t, script...)})[TypeDBInstance]
	})
}

func TestDBCluster(t *testing.T) {
	const (
		clusterID = "aurora-cluster-1"
		id        = "stacksnap-" + snapshotID + "-cluster"
	)
	req := request(TypeDBCluster, "Cluster", clusterID)
	made := snapshot.ResourceData{"db_cluster_snapshot_identifier": id}
	create := func(status int, file string) exchange {
		return exchange{action: "CreateDBClusterSnapshot", status: status, file: file, params: merge(map[string]string{
			"DBClusterSnapshotIdentifier": id,
			"DBClusterIdentifier":         clusterID,
		}, rdsOurTags("Cluster"))}
	}
	describe := func(status int, file string) exchange {
		return exchange{action: "DescribeDBClusterSnapshots", status: status, file: file, params: map[string]string{"DBClusterSnapshotIdentifier": id}}
	}
	del := func(status int, file string) exchange {
		return exchange{action: "DeleteDBClusterSnapshot", status: status, file: file, params: map[string]string{"DBClusterSnapshotIdentifier": id}}
	}
	runCases(t, []stubCase{
		{
			name:   "Start",
			call:   start(req),
			script: []exchange{create(200, "rds-create-db-cluster-snapshot.xml")},
			want:   made,
		},
		{
			name:   "RetriedStartAdoptsExistingSnapshot",
			call:   start(req),
			script: []exchange{create(400, "rds-error.DBClusterSnapshotAlreadyExistsFault.xml"), describe(200, "rds-describe-db-cluster-snapshots.creating.xml")},
			want:   made,
		},
		{
			name:    "ErrDBClusterSnapshotAlreadyExistsOfAnother",
			call:    start(request(TypeDBCluster, "Cluster", "other-cluster")),
			script:  []exchange{{action: "CreateDBClusterSnapshot", status: 400, file: "rds-error.DBClusterSnapshotAlreadyExistsFault.xml"}, describe(200, "rds-describe-db-cluster-snapshots.creating.xml")},
			wantErr: permanentErr("DBClusterSnapshotAlreadyExistsFault: the DB cluster snapshot " + id + " already exists and was not made by this snapshot; rename or delete it"),
		},
		{
			name:    "ErrAccessDenied",
			call:    start(req),
			script:  []exchange{create(403, "rds-error.AccessDenied.xml")},
			wantErr: permanentErr("AccessDenied: the tenant's stacksnap role lacks a permission to snapshot the DB cluster aurora-cluster-1: User: arn:aws:sts::123456789012:assumed-role/stacksnap-tenant/stacksnap is not authorized to perform: rds:CreateDBClusterSnapshot on resource: arn:aws:rds:us-east-1:123456789012:cluster:aurora-cluster-1 because no identity-based policy allows the rds:CreateDBClusterSnapshot action"),
		},
		{
			name:    "ErrInvalidParameterValue",
			call:    start(req),
			script:  []exchange{create(400, "rds-error.InvalidParameterValue.xml")},
			wantErr: permanentErr("InvalidParameterValue: AWS rejected a parameter of the snapshot of the DB cluster aurora-cluster-1: The parameter DBSnapshotIdentifier is not a valid identifier. Identifiers must begin with a letter; must contain only ASCII letters, digits, and hyphens; and must not end with a hyphen or contain two consecutive hyphens."),
		},
		{
			name:   "CheckPending",
			call:   check(req, made),
			script: []exchange{describe(200, "rds-describe-db-cluster-snapshots.creating.xml")},
			want:   snapshot.Progress{},
		},
		{
			name:   "CheckDone",
			call:   check(req, made),
			script: []exchange{describe(200, "rds-describe-db-cluster-snapshots.available.xml")},
			want:   snapshot.Progress{Done: true},
		},
		{
			name:   "CheckFailed",
			call:   check(req, made),
			script: []exchange{describe(200, "rds-describe-db-cluster-snapshots.failed.xml")},
			want:   snapshot.Progress{Failure: "DB cluster snapshot " + id + " failed"},
		},
		{
			name:   "CheckGone",
			call:   check(req, made),
			script: []exchange{describe(404, "rds-error.DBClusterSnapshotNotFoundFault.xml")},
			want:   snapshot.Progress{Failure: "DB cluster snapshot " + id + " no longer exists"},
		},
		{
			name:   "Delete",
			call:   remove(made),
			script: []exchange{del(200, "rds-delete-db-cluster-snapshot.xml")},
		},
		{
			name:   "DeleteAlreadyDeleted",
			call:   remove(made),
			script: []exchange{del(404, "rds-error.DBClusterSnapshotNotFoundFault.xml")},
		},
	}, func(t *testing.T, script []exchange) snapshot.Snapshotter {
		return New(Options{RDS: rdsClient(t, script...)})[TypeDBCluster]
	})
}
