// Package awssnap makes, checks and deletes the native artefacts of a
// stack's resources in the tenant's AWS account: EBS snapshots, AMIs, RDS
// DB (cluster) snapshots and DynamoDB backups. It implements the domain's
// snapshot.Snapshotter for each supported resource type.
//
// Every artefact carries the ids of the snapshot it belongs to: as tags
// where the API takes tags at creation, in its name where it does not
// (DynamoDB backups). A retried Start finds what an earlier attempt made
// and returns it, so that no step of the workflow makes two artefacts.
// Where that lookup can lag (EBS snapshots, DynamoDB backups), a second
// one can still be made: Start records the tags or the name of the
// request's artefacts, by which Delete finds and removes every one, and
// Check records any second one it sees once the artefact is ready.
package awssnap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strings"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// The CloudFormation resource types this package snapshots.
const (
	TypeVolume     = "AWS::EC2::Volume"
	TypeInstance   = "AWS::EC2::Instance"
	TypeDBInstance = "AWS::RDS::DBInstance"
	TypeDBCluster  = "AWS::RDS::DBCluster"
	TypeTable      = "AWS::DynamoDB::Table"
)

// Options says how to reach a tenant's account. Each function returns a
// client that acts in the given tenant's account (in production, from a
// config that assumes the tenant's role); all three are required.
type Options struct {
	EC2      func(ctx context.Context, tenantID string) (EC2API, error)
	RDS      func(ctx context.Context, tenantID string) (RDSAPI, error)
	DynamoDB func(ctx context.Context, tenantID string) (DynamoDBAPI, error)
	// RebootInstances makes AMIs with a reboot of the instance, which
	// gives consistent file systems at the price of downtime. Off by
	// default: the AMI is crash-consistent.
	RebootInstances bool
}

// New returns the snapshotters of every supported resource type.
func New(opts Options) snapshot.Snapshotters {
	return snapshot.Snapshotters{
		TypeVolume:     volumes{client: opts.EC2},
		TypeInstance:   instances{client: opts.EC2, reboot: opts.RebootInstances},
		TypeDBInstance: dbInstances{client: opts.RDS},
		TypeDBCluster:  dbClusters{client: opts.RDS},
		TypeTable:      tables{client: opts.DynamoDB},
	}
}

// SnapshotOperations and DeleteOperations list the IAM actions this
// package needs in a tenant's account, split by caller because the
// functions that make artefacts and those that delete them get different
// policies (template.yaml must grant exactly these). SnapshotOperations is
// what Start and Check call, plus the tagging permissions EC2 and RDS
// check when tags are given at creation.
var SnapshotOperations = []string{
	"ec2:DescribeSnapshots",
	"ec2:CreateSnapshot",
	"ec2:DescribeImages",
	"ec2:CreateImage",
	"ec2:CreateTags",
	"rds:DescribeDBInstances",
	"rds:CreateDBSnapshot",
	"rds:DescribeDBSnapshots",
	"rds:CreateDBClusterSnapshot",
	"rds:DescribeDBClusterSnapshots",
	"rds:AddTagsToResource",
	"dynamodb:ListBackups",
	"dynamodb:CreateBackup",
	"dynamodb:DescribeBackup",
}

// DeleteOperations is what Delete calls, the describes that find an
// AMI's snapshots and the lookups of every EBS snapshot and DynamoDB
// backup of a request included.
var DeleteOperations = []string{
	"ec2:DeleteSnapshot",
	"ec2:DescribeImages",
	"ec2:DescribeSnapshots",
	"ec2:DeregisterImage",
	"rds:DeleteDBSnapshot",
	"rds:DeleteDBClusterSnapshot",
	"dynamodb:ListBackups",
	"dynamodb:DeleteBackup",
}

// The tags every artefact carries.
const (
	tagStackID    = "stacksnap:stack-id"
	tagSnapshotID = "stacksnap:snapshot-id"
	tagTenantID   = "stacksnap:tenant-id"
	tagLogicalID  = "stacksnap:logical-id"
)

type tag struct{ key, value string }

func tags(req snapshot.ArtefactRequest) []tag {
	return []tag{
		{tagStackID, req.StackID},
		{tagSnapshotID, req.SnapshotID},
		{tagTenantID, req.TenantID},
		{tagLogicalID, req.Resource.LogicalID},
	}
}

// ownTags reports whether an artefact's tags name the request's snapshot
// and resource.
func ownTags(req snapshot.ArtefactRequest, tagged map[string]string) bool {
	return tagged[tagSnapshotID] == req.SnapshotID && tagged[tagLogicalID] == req.Resource.LogicalID
}

// description says, for a person looking at the console, what an artefact
// is; EC2 descriptions hold at most 255 characters.
func description(req snapshot.ArtefactRequest) string {
	return truncate("stacksnap snapshot "+req.SnapshotID+" of stack "+req.StackName+", resource "+req.Resource.LogicalID, 255)
}

// artefactName is "stacksnap-<snapshot id>-<logical id>" with each
// character that allowed rejects replaced by a hyphen. A name longer than
// max is cut and ends with a hash of the whole name, so that two long
// logical ids with the same beginning still get different names.
func artefactName(req snapshot.ArtefactRequest, max int, allowed func(rune) bool) string {
	name := strings.Map(func(r rune) rune {
		if allowed(r) {
			return r
		}
		return '-'
	}, "stacksnap-"+req.SnapshotID+"-"+req.Resource.LogicalID)
	if len(name) <= max {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return name[:max-9] + "-" + hex.EncodeToString(sum[:4])
}

func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return s[:max]
}

func isAlphanumeric(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// done is the progress of an artefact that is ready. A retried Start
// finds the first attempt's artefact by a describe that AWS may not have
// brought up to date yet; if it missed it, the request made two. found
// lists the request's artefacts: any besides the one data records under
// idKey are kept under extraKey, with the rest of data (Progress.Data
// replaces it), so that the snapshot's data shows them.
func done(data snapshot.ResourceData, idKey string, found []string, extraKey string) snapshot.Progress {
	id := dataString(data, idKey)
	extra := slices.DeleteFunc(slices.Clone(found), func(f string) bool { return f == id })
	if len(extra) == 0 {
		return snapshot.Progress{Done: true}
	}
	slices.Sort(extra)
	withExtra := maps.Clone(data)
	withExtra[extraKey] = extra
	return snapshot.Progress{Done: true, Data: withExtra}
}

// unique returns the ids without repeats, in the order they first come.
func unique(ids []string) []string {
	var out []string
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// dataString reads a string of a resource's data; "" when it is missing.
func dataString(data snapshot.ResourceData, key string) string {
	s, _ := data[key].(string)
	return s
}

// dataStrings reads a list of strings of a resource's data: a []string as
// made, or the []any it is once read back from the store.
func dataStrings(data snapshot.ResourceData, key string) []string {
	switch v := data[key].(type) {
	case []string:
		return v
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
