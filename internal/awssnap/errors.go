package awssnap

import (
	"errors"
	"fmt"

	"github.com/aws/smithy-go"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// retried are the error codes that mean "not now": AWS throttles us, or
// too many operations of a kind, or on the same resource, are under way.
// The workflow retries them with backoff.
var retried = map[string]bool{
	"RequestLimitExceeded":                  true, // EC2 API throttling
	"Throttling":                            true, // RDS API throttling
	"ThrottlingException":                   true, // DynamoDB API throttling
	"SnapshotCreationPerVolumeRateExceeded": true, // EC2: too many snapshots of one volume in a short time
	"ConcurrentSnapshotLimitExceeded":       true, // EC2: too many snapshots in progress
	"InvalidSnapshot.InUse":                 true, // EC2: the AMI being deregistered still holds the snapshot
	"InvalidDBInstanceState":                true, // RDS: the instance is busy, e.g. already backing up
	"InvalidDBClusterStateFault":            true, // RDS: the cluster is busy
	"InvalidDBSnapshotState":                true, // RDS: the snapshot is still being made
	"InvalidDBClusterSnapshotStateFault":    true, // RDS: the cluster snapshot is still being made
	"LimitExceededException":                true, // DynamoDB: too many backups at once
	"ContinuousBackupsUnavailableException": true, // DynamoDB: backups are being turned on
	"BackupInUseException":                  true, // DynamoDB: a backup of the table is being made or deleted
	"TableInUseException":                   true, // DynamoDB: the table is being created or updated
}

// permanent maps the error codes that no retry can fix to what they mean
// for the tenant. subject names the resource ("the volume vol-1"); message
// is AWS's own text, kept where it says more than the code.
var permanent = map[string]func(subject, message string) string{
	"InvalidVolume.NotFound":     notFound,
	"InvalidInstanceID.NotFound": notFound,
	"DBInstanceNotFound":         notFound,
	"DBClusterNotFoundFault":     notFound,
	"TableNotFoundException":     notFound,
	"SnapshotQuotaExceeded": func(string, string) string {
		return "the account has reached its quota of RDS snapshots: delete some, or ask AWS for a higher quota"
	},
	"SnapshotLimitExceeded": func(string, string) string {
		return "the account has reached its limit of EBS snapshots: delete some, or ask AWS for a higher limit"
	},
	"InvalidAMIName.Duplicate": func(subject, message string) string {
		return "another AMI already has the name this snapshot gives the AMI of " + subject + "; deregister it and try again: " + message
	},
	"UnsupportedOperation": func(subject, message string) string {
		return "AWS cannot snapshot " + subject + ": " + message
	},
	"InvalidParameterValue": func(subject, message string) string {
		return "AWS rejected a parameter of the snapshot of " + subject + ": " + message
	},
	"AuthFailure":           noPermission,
	"UnauthorizedOperation": noPermission,
	"AccessDenied":          noPermission,
	"AccessDeniedException": noPermission,
}

func notFound(subject, _ string) string { return subject + " does not exist" }

func noPermission(subject, message string) string {
	return "the tenant's stacksnap role lacks a permission to snapshot " + subject + ": " + message
}

// classify turns an error of an AWS call into what the workflow acts on:
// a *snapshot.ThrottlingError to retry, a *snapshot.ResourceSnapshotError
// that fails the snapshot with a message a person can act on, or, for
// anything unknown, the error wrapped (retried a few times, then fatal).
func classify(err error, subject string) error {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("%s: %w", subject, err)
	}
	code := apiErr.ErrorCode()
	if retried[code] {
		return &snapshot.ThrottlingError{Message: code + ": " + apiErr.ErrorMessage()}
	}
	if meaning, ok := permanent[code]; ok {
		return &snapshot.ResourceSnapshotError{Message: code + ": " + meaning(subject, apiErr.ErrorMessage())}
	}
	return fmt.Errorf("%s: %w", subject, err)
}

// errorCode returns the AWS error code of err, or "".
func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}
