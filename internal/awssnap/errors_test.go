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
		{"Throttling", "Rate exceeded", throttled("Throttling: Rate exceeded")},
		{"InvalidSnapshot.InUse", "The snapshot snap-1 is currently in use by ami-1", busyErr("InvalidSnapshot.InUse: the volume vol-1 is still in use by an AMI: The snapshot snap-1 is currently in use by ami-1")},
		{"InvalidDBClusterStateFault", "DBCluster db is not in the available state.", busyErr("InvalidDBClusterStateFault: the volume vol-1 is not available: it may be in its backup window, or being modified or maintained")},
		{"InvalidDBSnapshotState", "Cannot delete the snapshot because it is not in available state.", busyErr("InvalidDBSnapshotState: the volume vol-1 is not available: it is still being made, copied or changed")},
		{"InvalidDBClusterSnapshotStateFault", "Cannot delete the snapshot because it is not in available state.", busyErr("InvalidDBClusterSnapshotStateFault: the volume vol-1 is not available: it is still being made, copied or changed")},
		{"BackupInUseException", "Backup is being created", busyErr("BackupInUseException: another backup operation on the volume vol-1 is in progress (a backup being made, deleted or restored)")},
		{"TableInUseException", "Table is being updated", busyErr("TableInUseException: the volume vol-1 is being created, updated or deleted")},
		{"ContinuousBackupsUnavailableException", "Backups are being enabled", busyErr("ContinuousBackupsUnavailableException: backups of the volume vol-1 are still being turned on")},
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
