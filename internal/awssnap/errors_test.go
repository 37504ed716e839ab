package awssnap

import (
	"errors"
	"testing"

	"github.com/aws/smithy-go"
)

// TestClassify covers the codes the stubbed calls do not meet.
func TestClassify(t *testing.T) {
	const subject = "the volume vol-1"
	tests := []struct {
		code    string
		message string
		want    error
	}{
		{"InvalidVolume.NotFound", "The volume 'vol-1' does not exist.", permanentErr("InvalidVolume.NotFound: the volume vol-1 does not exist")},
		{"SnapshotLimitExceeded", "The maximum number of snapshots has been reached.", permanentErr("SnapshotLimitExceeded: the account has reached its limit of EBS snapshots: delete some, or ask AWS for a higher limit")},
		{"UnsupportedOperation", "The volume is on an Outpost.", permanentErr("UnsupportedOperation: AWS cannot snapshot the volume vol-1: The volume is on an Outpost.")},
		{"AuthFailure", "AWS was not able to validate the provided access credentials", permanentErr("AuthFailure: the tenant's stacksnap role lacks a permission to snapshot the volume vol-1: AWS was not able to validate the provided access credentials")},
		{"AccessDeniedException", "User is not authorized to perform: dynamodb:CreateBackup", permanentErr("AccessDeniedException: the tenant's stacksnap role lacks a permission to snapshot the volume vol-1: User is not authorized to perform: dynamodb:CreateBackup")},
		{"InvalidAMIName.Duplicate", "AMI name x is already in use by AMI ami-1", permanentErr("InvalidAMIName.Duplicate: another AMI already has the name this snapshot gives the AMI of the volume vol-1; deregister it and try again: AMI name x is already in use by AMI ami-1")},
		{"InvalidSnapshot.InUse", "The snapshot snap-1 is currently in use by ami-1", throttled("InvalidSnapshot.InUse: The snapshot snap-1 is currently in use by ami-1")},
		{"BackupInUseException", "Backup is being created", throttled("BackupInUseException: Backup is being created")},
		{"ContinuousBackupsUnavailableException", "Backups are being enabled", throttled("ContinuousBackupsUnavailableException: Backups are being enabled")},
		{"InternalError", "An internal error has occurred", otherError("the volume vol-1: api error InternalError: An internal error has occurred")},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			err := classify(&smithy.GenericAPIError{Code: tt.code, Message: tt.message}, subject)
			assertError(t, err, tt.want)
		})
	}
	t.Run("NotAnAPIError", func(t *testing.T) {
		cause := errors.New("connection reset")
		err := classify(cause, subject)
		assertError(t, err, otherError("the volume vol-1: connection reset"))
		if !errors.Is(err, cause) {
			t.Errorf("%v does not wrap its cause", err)
		}
	})
}
