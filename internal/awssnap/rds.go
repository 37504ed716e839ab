package awssnap

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/rds/types"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// RDSAPI is the part of the RDS client the DB instance and DB cluster
// snapshotters call.
type RDSAPI interface {
	DescribeDBInstances(ctx context.Context, in *rds.DescribeDBInstancesInput, optFns ...func(*rds.Options)) (*rds.DescribeDBInstancesOutput, error)
	CreateDBSnapshot(ctx context.Context, in *rds.CreateDBSnapshotInput, optFns ...func(*rds.Options)) (*rds.CreateDBSnapshotOutput, error)
	DescribeDBSnapshots(ctx context.Context, in *rds.DescribeDBSnapshotsInput, optFns ...func(*rds.Options)) (*rds.DescribeDBSnapshotsOutput, error)
	DeleteDBSnapshot(ctx context.Context, in *rds.DeleteDBSnapshotInput, optFns ...func(*rds.Options)) (*rds.DeleteDBSnapshotOutput, error)
	CreateDBClusterSnapshot(ctx context.Context, in *rds.CreateDBClusterSnapshotInput, optFns ...func(*rds.Options)) (*rds.CreateDBClusterSnapshotOutput, error)
	DescribeDBClusterSnapshots(ctx context.Context, in *rds.DescribeDBClusterSnapshotsInput, optFns ...func(*rds.Options)) (*rds.DescribeDBClusterSnapshotsOutput, error)
	DeleteDBClusterSnapshot(ctx context.Context, in *rds.DeleteDBClusterSnapshotInput, optFns ...func(*rds.Options)) (*rds.DeleteDBClusterSnapshotOutput, error)
}

// Keys of the resource data of RDS resources.
const (
	keyDBSnapshot        = "db_snapshot_identifier"
	keyDBClusterSnapshot = "db_cluster_snapshot_identifier"
	keyCoveredByCluster  = "covered_by_cluster" // the DB cluster whose snapshot holds an instance's data
)

// dbInstances snapshots an AWS::RDS::DBInstance to a DB snapshot.
//
// An instance of an Aurora or Multi-AZ DB cluster cannot be snapshotted
// on its own: its data is in the cluster's snapshot. Its resource data is
// then {"covered_by_cluster": "<cluster id>"}, it is done at once and has
// nothing to delete. A restore recreates it with its cluster.
type dbInstances struct {
	client func(ctx context.Context, tenantID string) (RDSAPI, error)
}

// Start makes the DB snapshot. Its identifier is fixed by the snapshot
// and the resource, so a retried start meets DBSnapshotAlreadyExists and
// adopts the snapshot if it is the one an earlier attempt made.
func (d dbInstances) Start(ctx context.Context, req snapshot.ArtefactRequest) (snapshot.ResourceData, error) {
	api, err := d.client(ctx, req.TenantID)
	if err != nil {
		return nil, fmt.Errorf("RDS client of tenant %s: %w", req.TenantID, err)
	}
	instanceID := req.Resource.PhysicalID
	subject := "the DB instance " + instanceID
	described, err := api.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(instanceID)})
	if err != nil {
		return nil, classify(err, subject)
	}
	for _, instance := range described.DBInstances {
		if cluster := aws.ToString(instance.DBClusterIdentifier); cluster != "" {
			return snapshot.ResourceData{keyCoveredByCluster: cluster}, nil
		}
	}
	id := rdsIdentifier(req, 255)
	_, err = api.CreateDBSnapshot(ctx, &rds.CreateDBSnapshotInput{
		DBSnapshotIdentifier: aws.String(id),
		DBInstanceIdentifier: aws.String(instanceID),
		Tags:                 rdsTags(tags(req)),
	})
	if errorCode(err) == "DBSnapshotAlreadyExists" {
		return d.adopt(ctx, api, req, id)
	}
	if err != nil {
		return nil, classify(err, subject)
	}
	return snapshot.ResourceData{keyDBSnapshot: id}, nil
}

// adopt accepts an existing DB snapshot if it is of the same instance and
// tagged with the same snapshot and resource.
func (d dbInstances) adopt(ctx context.Context, api RDSAPI, req snapshot.ArtefactRequest, id string) (snapshot.ResourceData, error) {
	out, err := api.DescribeDBSnapshots(ctx, &rds.DescribeDBSnapshotsInput{DBSnapshotIdentifier: aws.String(id)})
	if err != nil {
		return nil, classify(err, "the DB snapshot "+id)
	}
	for _, s := range out.DBSnapshots {
		if strings.EqualFold(aws.ToString(s.DBInstanceIdentifier), req.Resource.PhysicalID) && ownTags(req, rdsTagMap(s.TagList)) {
			return snapshot.ResourceData{keyDBSnapshot: id}, nil
		}
	}
	return nil, &snapshot.ResourceSnapshotError{Message: "DBSnapshotAlreadyExists: the DB snapshot " + id +
		" already exists and was not made by this snapshot; rename or delete it"}
}

// Check reads the status of the DB snapshot.
func (d dbInstances) Check(ctx context.Context, req snapshot.ArtefactRequest, data snapshot.ResourceData) (snapshot.Progress, error) {
	if dataString(data, keyCoveredByCluster) != "" {
		return snapshot.Progress{Done: true}, nil
	}
	id := dataString(data, keyDBSnapshot)
	if id == "" {
		return snapshot.Progress{}, fmt.Errorf("resource data of %s has no %s", req.Resource.LogicalID, keyDBSnapshot)
	}
	api, err := d.client(ctx, req.TenantID)
	if err != nil {
		return snapshot.Progress{}, fmt.Errorf("RDS client of tenant %s: %w", req.TenantID, err)
	}
	out, err := api.DescribeDBSnapshots(ctx, &rds.DescribeDBSnapshotsInput{DBSnapshotIdentifier: aws.String(id)})
	if errorCode(err) == "DBSnapshotNotFound" || (err == nil && len(out.DBSnapshots) == 0) {
		return snapshot.Progress{Failure: "DB snapshot " + id + " no longer exists"}, nil
	}
	if err != nil {
		return snapshot.Progress{}, classify(err, "the DB snapshot "+id)
	}
	return rdsProgress("DB snapshot "+id, aws.ToString(out.DBSnapshots[0].Status)), nil
}

// Delete deletes the DB snapshot; one already gone is deleted.
func (d dbInstances) Delete(ctx context.Context, tenantID string, data snapshot.ResourceData) error {
	id := dataString(data, keyDBSnapshot)
	if id == "" {
		return nil
	}
	api, err := d.client(ctx, tenantID)
	if err != nil {
		return fmt.Errorf("RDS client of tenant %s: %w", tenantID, err)
	}
	_, err = api.DeleteDBSnapshot(ctx, &rds.DeleteDBSnapshotInput{DBSnapshotIdentifier: aws.String(id)})
	if err == nil || errorCode(err) == "DBSnapshotNotFound" {
		return nil
	}
	return classify(err, "the DB snapshot "+id)
}

// dbClusters snapshots an AWS::RDS::DBCluster to a DB cluster snapshot.
type dbClusters struct {
	client func(ctx context.Context, tenantID string) (RDSAPI, error)
}

// Start makes the DB cluster snapshot, or adopts the one an earlier
// attempt made, as dbInstances.Start does.
func (c dbClusters) Start(ctx context.Context, req snapshot.ArtefactRequest) (snapshot.ResourceData, error) {
	api, err := c.client(ctx, req.TenantID)
	if err != nil {
		return nil, fmt.Errorf("RDS client of tenant %s: %w", req.TenantID, err)
	}
	id := rdsIdentifier(req, 63)
	_, err = api.CreateDBClusterSnapshot(ctx, &rds.CreateDBClusterSnapshotInput{
		DBClusterSnapshotIdentifier: aws.String(id),
		DBClusterIdentifier:         aws.String(req.Resource.PhysicalID),
		Tags:                        rdsTags(tags(req)),
	})
	if errorCode(err) == "DBClusterSnapshotAlreadyExistsFault" {
		return c.adopt(ctx, api, req, id)
	}
	if err != nil {
		return nil, classify(err, "the DB cluster "+req.Resource.PhysicalID)
	}
	return snapshot.ResourceData{keyDBClusterSnapshot: id}, nil
}

// adopt accepts an existing DB cluster snapshot if it is of the same
// cluster and tagged with the same snapshot and resource.
func (c dbClusters) adopt(ctx context.Context, api RDSAPI, req snapshot.ArtefactRequest, id string) (snapshot.ResourceData, error) {
	out, err := api.DescribeDBClusterSnapshots(ctx, &rds.DescribeDBClusterSnapshotsInput{DBClusterSnapshotIdentifier: aws.String(id)})
	if err != nil {
		return nil, classify(err, "the DB cluster snapshot "+id)
	}
	for _, s := range out.DBClusterSnapshots {
		if strings.EqualFold(aws.ToString(s.DBClusterIdentifier), req.Resource.PhysicalID) && ownTags(req, rdsTagMap(s.TagList)) {
			return snapshot.ResourceData{keyDBClusterSnapshot: id}, nil
		}
	}
	return nil, &snapshot.ResourceSnapshotError{Message: "DBClusterSnapshotAlreadyExistsFault: the DB cluster snapshot " + id +
		" already exists and was not made by this snapshot; rename or delete it"}
}

// Check reads the status of the DB cluster snapshot.
func (c dbClusters) Check(ctx context.Context, req snapshot.ArtefactRequest, data snapshot.ResourceData) (snapshot.Progress, error) {
	id := dataString(data, keyDBClusterSnapshot)
	if id == "" {
		return snapshot.Progress{}, fmt.Errorf("resource data of %s has no %s", req.Resource.LogicalID, keyDBClusterSnapshot)
	}
	api, err := c.client(ctx, req.TenantID)
	if err != nil {
		return snapshot.Progress{}, fmt.Errorf("RDS client of tenant %s: %w", req.TenantID, err)
	}
	out, err := api.DescribeDBClusterSnapshots(ctx, &rds.DescribeDBClusterSnapshotsInput{DBClusterSnapshotIdentifier: aws.String(id)})
	if errorCode(err) == "DBClusterSnapshotNotFoundFault" || (err == nil && len(out.DBClusterSnapshots) == 0) {
		return snapshot.Progress{Failure: "DB cluster snapshot " + id + " no longer exists"}, nil
	}
	if err != nil {
		return snapshot.Progress{}, classify(err, "the DB cluster snapshot "+id)
	}
	return rdsProgress("DB cluster snapshot "+id, aws.ToString(out.DBClusterSnapshots[0].Status)), nil
}

// Delete deletes the DB cluster snapshot; one already gone is deleted.
func (c dbClusters) Delete(ctx context.Context, tenantID string, data snapshot.ResourceData) error {
	id := dataString(data, keyDBClusterSnapshot)
	if id == "" {
		return nil
	}
	api, err := c.client(ctx, tenantID)
	if err != nil {
		return fmt.Errorf("RDS client of tenant %s: %w", tenantID, err)
	}
	_, err = api.DeleteDBClusterSnapshot(ctx, &rds.DeleteDBClusterSnapshotInput{DBClusterSnapshotIdentifier: aws.String(id)})
	if err == nil || errorCode(err) == "DBClusterSnapshotNotFoundFault" {
		return nil
	}
	return classify(err, "the DB cluster snapshot "+id)
}

// rdsProgress reads the Status of a DB (cluster) snapshot.
func rdsProgress(what, status string) snapshot.Progress {
	switch status {
	case "available":
		return snapshot.Progress{Done: true}
	case "creating":
		return snapshot.Progress{}
	case "failed":
		return snapshot.Progress{Failure: what + " failed"}
	}
	return snapshot.Progress{Failure: what + " is " + status}
}

// rdsIdentifier names a DB (cluster) snapshot: at most max letters,
// digits and hyphens, starting with a letter, without two hyphens in a
// row or one at the end. RDS keeps identifiers in lower case.
func rdsIdentifier(req snapshot.ArtefactRequest, max int) string {
	id := strings.ToLower(artefactName(req, max, isAlphanumeric))
	for strings.Contains(id, "--") {
		id = strings.ReplaceAll(id, "--", "-")
	}
	return strings.TrimRight(id, "-")
}

func rdsTagMap(ts []types.Tag) map[string]string {
	m := make(map[string]string, len(ts))
	for _, t := range ts {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func rdsTags(ts []tag) []types.Tag {
	out := make([]types.Tag, len(ts))
	for i, t := range ts {
		out[i] = types.Tag{Key: aws.String(t.key), Value: aws.String(t.value)}
	}
	return out
}
