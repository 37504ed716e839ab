package awssnap

import (
	"errors"
	"fmt"

	"github.com/aws/smithy-go"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// throttling are the error codes of rate limits: AWS asks us to slow
// down, and a retry with backoff gets through within minutes. So does
// SnapshotCreationPerVolumeRateExceeded: EC2 asks for 15 seconds between
// two snapshots of one volume, not for the volume to finish some work.
var throttling = map[string]bool{
	"RequestLimitExceeded":                  true, // EC2 API throttling
	"Throttling":                            true, // RDS API throttling
	"ThrottlingException":                   true, // DynamoDB API throttling
	"SnapshotCreationPerVolumeRateExceeded": true, // EC2: a second snapshot of a volume within 15 seconds
}

// busy maps the error codes that mean the resource, or the account, is
// busy with work that may go on for long (a backup window, other
// snapshots in progress) to what is busy, in words for the tenant: the
// workflow starts the artefact again at a later check instead of
// spending its quick retries. subject and message are as for permanent.
var busy = map[string]func(subject, message string) string{
	"InvalidDBInstanceState":             dbNotAvailable,
	"InvalidDBClusterStateFault":         dbNotAvailable,
	"InvalidDBSnapshotState":             snapshotNotAvailable,
	"InvalidDBClusterSnapshotStateFault": snapshotNotAvailable,
	"ConcurrentSnapshotLimitExceeded": func(subject, _ string) string {
		return "too many EBS snapshots of " + subject + " are in progress already; EBS takes only a few of a volume at once"
	},
	"InvalidSnapshot.InUse": func(subject, message string) string {
		return subject + " is still in use by an AMI: " + message
	},
	"LimitExceededException": func(string, string) string {
		return "the account has too many DynamoDB backups and table operations in progress"
	},
	"BackupInUseException": func(subject, _ string) string {
		return "another backup operation on " + subject + " is in progress (a backup being made, deleted or restored)"
	},
	"TableInUseException": func(subject, _ string) string {
		return subject + " is being created, updated or deleted"
	},
	"ContinuousBackupsUnavailableException": func(subject, _ string) string {
		return "backups of " + subject + " are still being turned on"
	},
}

func dbNotAvailable(subject, _ string) string {
	return subject + " is not available: it may be in its backup window, or being modified or maintained"
}

func snapshotNotAvailable(subject, _ string) string {
	return subject + " is not available: it is still being made, copied or changed"
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
// a *snapshot.ThrottlingError to retry soon, a *snapshot.BusyError to try
// again later, a *snapshot.ResourceSnapshotError that fails the snapshot
// with a message a person can act on, or, for anything unknown, the error
// wrapped (retried a few times, then fatal).
func classify(err error, subject string) error {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("%s: %w", subject, err)
	}
	code := apiErr.ErrorCode()
	if throttling[code] {
		return &snapshot.ThrottlingError{Message: code + ": " + apiErr.ErrorMessage()}
	}
	if what, ok := busy[code]; ok {
		return &snapshot.BusyError{Message: code + ": " + what(subject, apiErr.ErrorMessage())}
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
