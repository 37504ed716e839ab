package awssnap

import (
	"encoding/json"
	"maps"
	"testing"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// ourTags are the parameters of a TagSpecification carrying the four
// stacksnap tags of a request for logicalID.
func ourTags(spec, logicalID string) map[string]string {
	p := "TagSpecification." + spec + "."
	return map[string]string{
		p + "Tag.1.Key": tagStackID, p + "Tag.1.Value": stackID,
		p + "Tag.2.Key": tagSnapshotID, p + "Tag.2.Value": snapshotID,
		p + "Tag.3.Key": tagTenantID, p + "Tag.3.Value": tenant,
		p + "Tag.4.Key": tagLogicalID, p + "Tag.4.Value": logicalID,
	}
}

func merge(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func TestVolume(t *testing.T) {
	const (
		volumeID = "vol-1234567890abcdef0"
		snapID   = "snap-1234567890abcdef0"
		extraID  = "snap-0fedcba9876543210" // made by a retried start whose lookup lagged
	)
	req := request(TypeVolume, "DataVolume", volumeID)
	made := snapshot.ResourceData{
		"snapshot_id":              snapID,
		"snapshot_tag_snapshot_id": snapshotID,
		"snapshot_tag_logical_id":  "DataVolume",
	}
	withExtra := maps.Clone(made)
	withExtra["extra_snapshot_ids"] = []string{extraID}
	// Data recorded before Start kept the tags: Delete has no lookup.
	legacy := snapshot.ResourceData{"snapshot_id": snapID}
	legacyWithExtra := snapshot.ResourceData{"snapshot_id": snapID, "extra_snapshot_ids": []string{extraID}}
	// The lookup of an earlier attempt's snapshot.
	lookup := func(file string) exchange {
		return exchange{action: "DescribeSnapshots", file: file, params: map[string]string{
			"Owner.1":          "self",
			"Filter.1.Name":    "tag:stacksnap:snapshot-id",
			"Filter.1.Value.1": snapshotID,
			"Filter.2.Name":    "tag:stacksnap:logical-id",
			"Filter.2.Value.1": "DataVolume",
			"Filter.3.Name":    "volume-id",
			"Filter.3.Value.1": volumeID,
			"Filter.4.Name":    "status",
			"Filter.4.Value.1": "pending",
			"Filter.4.Value.2": "completed",
		}}
	}
	create := func(status int, file string) exchange {
		return exchange{action: "CreateSnapshot", status: status, file: file, params: merge(map[string]string{
			"VolumeId":                        volumeID,
			"Description":                     "stacksnap snapshot " + snapshotID + " of stack teststack, resource DataVolume",
			"TagSpecification.1.ResourceType": "snapshot",
		}, ourTags("1", "DataVolume"))}
	}
	describe := func(status int, file string) exchange {
		return exchange{action: "DescribeSnapshots", status: status, file: file, params: map[string]string{"SnapshotId.1": snapID}}
	}
	// The lookup of every snapshot of the request, once it is complete
	// and by Delete.
	all := func(status int, file string) exchange {
		return exchange{action: "DescribeSnapshots", status: status, file: file, params: map[string]string{
			"Owner.1":          "self",
			"Filter.1.Name":    "tag:stacksnap:snapshot-id",
			"Filter.1.Value.1": snapshotID,
			"Filter.2.Name":    "tag:stacksnap:logical-id",
			"Filter.2.Value.1": "DataVolume",
		}}
	}
	allNextPage := all(200, "ec2-describe-snapshots.completed.xml")
	allNextPage.params = merge(allNextPage.params, map[string]string{"NextToken": "eyJ2IjoiMiIsImMiOiJwYWdlMiJ9"})
	del := func(status int, file string) exchange {
		return exchange{action: "DeleteSnapshot", status: status, file: file, params: map[string]string{"SnapshotId": snapID}}
	}
	delExtra := func(status int, file string) exchange {
		return exchange{action: "DeleteSnapshot", status: status, file: file, params: map[string]string{"SnapshotId": extraID}}
	}
	runCases(t, []stubCase{
		{
			name:   "Start",
			call:   start(req),
			script: []exchange{lookup("ec2-describe-snapshots.empty.xml"), create(200, "ec2-create-snapshot.xml")},
			want:   made,
		},
		{
			name:   "RetriedStartAdoptsTaggedSnapshot",
			call:   start(req),
			script: []exchange{lookup("ec2-describe-snapshots.pending.xml")},
			want:   made,
		},
		{
			name:    "ErrSnapshotCreationPerVolumeRateExceeded",
			call:    start(req),
			script:  []exchange{lookup("ec2-describe-snapshots.empty.xml"), create(400, "ec2-error.SnapshotCreationPerVolumeRateExceeded.xml")},
			wantErr: throttled("SnapshotCreationPerVolumeRateExceeded: The maximum per volume CreateSnapshot request rate has been exceeded. Use an increasing or variable sleep interval between requests."),
		},
		{
			name:    "ErrRequestLimitExceeded",
			call:    start(req),
			script:  []exchange{{action: "DescribeSnapshots", status: 503, file: "ec2-error.RequestLimitExceeded.xml"}},
			wantErr: throttled("RequestLimitExceeded: Request limit exceeded."),
		},
		{
			name:    "ErrInvalidVolumeNotFound",
			call:    start(req),
			script:  []exchange{lookup("ec2-describe-snapshots.empty.xml"), create(400, "ec2-error.InvalidVolume.NotFound.xml")},
			wantErr: permanentErr("InvalidVolume.NotFound: the volume vol-1234567890abcdef0 does not exist"),
		},
		{
			name:   "CheckPending",
			call:   check(req, made),
			script: []exchange{describe(200, "ec2-describe-snapshots.pending.xml")},
			want:   snapshot.Progress{},
		},
		{
			name:   "CheckDone",
			call:   check(req, made),
			script: []exchange{describe(200, "ec2-describe-snapshots.completed.xml"), all(200, "ec2-describe-snapshots.completed.xml")},
			want:   snapshot.Progress{Done: true},
		},
		{
			name:   "CheckDoneRecordsExtraSnapshotOfRetriedStart",
			call:   check(req, made),
			script: []exchange{describe(200, "ec2-describe-snapshots.completed.xml"), all(200, "ec2-describe-snapshots.retried.xml")},
			want:   snapshot.Progress{Done: true, Data: withExtra},
		},
		{
			name:   "CheckDoneRecordsExtraSnapshotInLegacyData",
			call:   check(req, legacy),
			script: []exchange{describe(200, "ec2-describe-snapshots.completed.xml"), all(200, "ec2-describe-snapshots.retried.xml")},
			want:   snapshot.Progress{Done: true, Data: legacyWithExtra},
		},
		{
			name:    "ErrCheckDoneThrottled",
			call:    check(req, made),
			script:  []exchange{describe(200, "ec2-describe-snapshots.completed.xml"), all(503, "ec2-error.RequestLimitExceeded.xml")},
			wantErr: throttled("RequestLimitExceeded: Request limit exceeded."),
		},
		{
			name:   "CheckError",
			call:   check(req, made),
			script: []exchange{describe(200, "ec2-describe-snapshots.error.xml")},
			want:   snapshot.Progress{Failure: "EBS snapshot snap-1234567890abcdef0 failed: The volume vol-1234567890abcdef0 could not be read."},
		},
		{
			name:   "CheckGone",
			call:   check(req, made),
			script: []exchange{describe(400, "ec2-error.InvalidSnapshot.NotFound.xml")},
			want:   snapshot.Progress{Failure: "EBS snapshot snap-1234567890abcdef0 no longer exists"},
		},
		{
			name:    "ErrCheckWithoutSnapshotID",
			call:    check(req, snapshot.ResourceData{}),
			wantErr: otherError("resource data of DataVolume has no snapshot_id"),
		},
		{
			name:   "Delete",
			call:   remove(made),
			script: []exchange{all(200, "ec2-describe-snapshots.completed.xml"), del(200, "ec2-delete-snapshot.xml")},
		},
		{
			name:   "DeleteAlreadyDeleted",
			call:   remove(made),
			script: []exchange{all(200, "ec2-describe-snapshots.empty.xml"), del(400, "ec2-error.InvalidSnapshot.NotFound.xml")},
		},
		{
			// The snapshot failed before any Check recorded the extra
			// snapshot of a retried start: the tag lookup finds it, on
			// the first of two pages.
			name: "DeleteFindsUnrecordedSnapshotOfRetriedStart",
			call: remove(made),
			script: []exchange{
				all(200, "ec2-describe-snapshots.retried-page1.xml"),
				allNextPage,
				del(200, "ec2-delete-snapshot.xml"),
				delExtra(200, "ec2-delete-snapshot.xml"),
			},
		},
		{
			name: "DeleteRemovesExtraSnapshotOnce",
			call: remove(withExtra),
			script: []exchange{
				all(200, "ec2-describe-snapshots.retried.xml"),
				del(200, "ec2-delete-snapshot.xml"),
				delExtra(200, "ec2-delete-snapshot.xml"),
			},
		},
		{
			name: "RetriedDeleteRemovesStoredExtraSnapshot",
			call: remove(roundTrip(t, withExtra)),
			script: []exchange{
				all(200, "ec2-describe-snapshots.empty.xml"),
				del(400, "ec2-error.InvalidSnapshot.NotFound.xml"),
				delExtra(200, "ec2-delete-snapshot.xml"),
			},
		},
		{
			name:    "ErrDeleteLookupThrottled",
			call:    remove(made),
			script:  []exchange{all(503, "ec2-error.RequestLimitExceeded.xml")},
			wantErr: throttled("RequestLimitExceeded: Request limit exceeded."),
		},
		{
			name:    "ErrDeleteSnapshotInUse",
			call:    remove(made),
			script:  []exchange{all(200, "ec2-describe-snapshots.completed.xml"), del(400, "ec2-error.InvalidSnapshot.InUse.xml")},
			wantErr: busyErr("InvalidSnapshot.InUse: the EBS snapshot snap-1234567890abcdef0 is still in use by an AMI: The snapshot snap-1234567890abcdef0 is currently in use by ami-4fa54026"),
		},
		{
			name:   "DeleteLegacyData",
			call:   remove(legacy),
			script: []exchange{del(200, "ec2-delete-snapshot.xml")},
		},
		{
			name:   "DeleteLegacyDataRemovesStoredExtraSnapshot",
			call:   remove(roundTrip(t, legacyWithExtra)),
			script: []exchange{del(400, "ec2-error.InvalidSnapshot.NotFound.xml"), delExtra(200, "ec2-delete-snapshot.xml")},
		},
		{
			name: "DeleteWithoutArtefact",
			call: remove(snapshot.ResourceData{}),
		},
	}, func(t *testing.T, script []exchange) snapshot.Snapshotter {
		return New(Options{EC2: ec2Client(t, script...)})[TypeVolume]
	})
}

func TestInstance(t *testing.T) {
	const (
		instanceID = "i-1a2b3c4d"
		imageID    = "ami-4fa54026"
		name       = "stacksnap-" + snapshotID + "-WebServer"
	)
	req := request(TypeInstance, "WebServer", instanceID)
	made := snapshot.ResourceData{"image_id": imageID, "image_name": name}
	// What Check records once the AMI is available, and the same data read
	// back from the store, where lists are []any.
	ready := snapshot.ResourceData{"image_id": imageID, "image_name": name,
		"snapshot_ids": []string{"snap-0a1b2c3d4e5f60001", "snap-0a1b2c3d4e5f60002"}}
	stored := roundTrip(t, ready)
	if _, ok := stored["snapshot_ids"].([]any); !ok {
		t.Fatalf("snapshot_ids read back as %T, want []any", stored["snapshot_ids"])
	}
	lookup := func(file string) exchange {
		return exchange{action: "DescribeImages", file: file, params: map[string]string{
			"Owner.1":          "self",
			"Filter.1.Name":    "tag:stacksnap:snapshot-id",
			"Filter.1.Value.1": snapshotID,
			"Filter.2.Name":    "tag:stacksnap:logical-id",
			"Filter.2.Value.1": "WebServer",
			"Filter.3.Name":    "state",
			"Filter.3.Value.1": "pending",
			"Filter.3.Value.2": "available",
		}}
	}
	create := func(noReboot string, status int, file string) exchange {
		return exchange{action: "CreateImage", status: status, file: file, params: merge(map[string]string{
			"InstanceId":                      instanceID,
			"Name":                            name,
			"Description":                     "stacksnap snapshot " + snapshotID + " of stack teststack, resource WebServer",
			"NoReboot":                        noReboot,
			"TagSpecification.1.ResourceType": "image",
			"TagSpecification.1.Tag.5.Key":    "Name",
			"TagSpecification.1.Tag.5.Value":  name,
			"TagSpecification.2.ResourceType": "snapshot",
			"TagSpecification.2.Tag.5.Key":    "Name",
			"TagSpecification.2.Tag.5.Value":  name,
		}, ourTags("1", "WebServer"), ourTags("2", "WebServer"))}
	}
	// The lookup by name after CreateImage found the name taken.
	named := func(file string) exchange {
		return exchange{action: "DescribeImages", file: file, params: map[string]string{
			"Owner.1":          "self",
			"Filter.1.Name":    "name",
			"Filter.1.Value.1": name,
		}}
	}
	describe := func(status int, file string) exchange {
		return exchange{action: "DescribeImages", status: status, file: file, params: map[string]string{"ImageId.1": imageID}}
	}
	tagged := func(file string) exchange {
		return exchange{action: "DescribeSnapshots", file: file, params: map[string]string{
			"Owner.1":          "self",
			"Filter.1.Name":    "tag:Name",
			"Filter.1.Value.1": name,
			"Filter.2.Name":    "tag-key",
			"Filter.2.Value.1": "stacksnap:snapshot-id",
		}}
	}
	deregister := func(status int, file string) exchange {
		return exchange{action: "DeregisterImage", status: status, file: file, params: map[string]string{"ImageId": imageID}}
	}
	del := func(snapID string, status int, file string) exchange {
		return exchange{action: "DeleteSnapshot", status: status, file: file, params: map[string]string{"SnapshotId": snapID}}
	}
	cases := []stubCase{
		{
			name:   "Start",
			call:   start(req),
			script: []exchange{lookup("ec2-describe-images.empty.xml"), create("true", 200, "ec2-create-image.xml")},
			want:   made,
		},
		{
			name:   "RetriedStartAdoptsTaggedImage",
			call:   start(req),
			script: []exchange{lookup("ec2-describe-images.pending.xml")},
			want:   made,
		},
		{
			name: "RetriedStartAdoptsImageOfSameNameWhenTagLookupLags",
			call: start(req),
			script: []exchange{
				lookup("ec2-describe-images.empty.xml"),
				create("true", 400, "ec2-error.InvalidAMIName.Duplicate.xml"),
				named("ec2-describe-images.pending.xml"),
			},
			want: made,
		},
		{
			name: "ErrInvalidAMINameDuplicateOfAnother",
			call: start(req),
			script: []exchange{
				lookup("ec2-describe-images.empty.xml"),
				create("true", 400, "ec2-error.InvalidAMIName.Duplicate.xml"),
				named("ec2-describe-images.other.xml"),
			},
			wantErr: permanentErr("InvalidAMIName.Duplicate: another AMI already has the name this snapshot gives the AMI of the instance i-1a2b3c4d; deregister it and try again: AMI name " + name + " is already in use by AMI ami-4fa54026"),
		},
		{
			name:    "ErrInvalidInstanceIDNotFound",
			call:    start(req),
			script:  []exchange{lookup("ec2-describe-images.empty.xml"), create("true", 400, "ec2-error.InvalidInstanceID.NotFound.xml")},
			wantErr: permanentErr("InvalidInstanceID.NotFound: the instance i-1a2b3c4d does not exist"),
		},
		{
			name:    "ErrUnauthorizedOperation",
			call:    start(req),
			script:  []exchange{lookup("ec2-describe-images.empty.xml"), create("true", 403, "ec2-error.UnauthorizedOperation.xml")},
			wantErr: permanentErr("UnauthorizedOperation: the tenant's stacksnap role lacks a permission to snapshot the instance i-1a2b3c4d: You are not authorized to perform this operation."),
		},
		{
			name:    "ErrConcurrentSnapshotLimitExceeded",
			call:    start(req),
			script:  []exchange{lookup("ec2-describe-images.empty.xml"), create("true", 400, "ec2-error.ConcurrentSnapshotLimitExceeded.xml")},
			wantErr: busyErr("ConcurrentSnapshotLimitExceeded: too many EBS snapshots of the instance i-1a2b3c4d are in progress already; EBS takes only a few of a volume at once"),
		},
		{
			name:   "CheckPending",
			call:   check(req, made),
			script: []exchange{describe(200, "ec2-describe-images.pending.xml")},
			want:   snapshot.Progress{},
		},
		{
			name:   "CheckDone",
			call:   check(req, made),
			script: []exchange{describe(200, "ec2-describe-images.available.xml")},
			want:   snapshot.Progress{Done: true, Data: ready},
		},
		{
			name:   "CheckFailed",
			call:   check(req, made),
			script: []exchange{describe(200, "ec2-describe-images.failed.xml")},
			want:   snapshot.Progress{Failure: "AMI ami-4fa54026 failed: Client.InstanceTerminated: The instance was terminated or rebooted during AMI creation."},
		},
		{
			name:   "CheckGone",
			call:   check(req, made),
			script: []exchange{describe(400, "ec2-error.InvalidAMIID.NotFound.xml")},
			want:   snapshot.Progress{Failure: "AMI ami-4fa54026 no longer exists"},
		},
		{
			name: "Delete",
			call: remove(made),
			script: []exchange{
				describe(200, "ec2-describe-images.available.xml"),
				tagged("ec2-describe-snapshots.of-image.xml"),
				deregister(200, "ec2-deregister-image.xml"),
				del("snap-0a1b2c3d4e5f60001", 200, "ec2-delete-snapshot.xml"),
				del("snap-0a1b2c3d4e5f60002", 200, "ec2-delete-snapshot.xml"),
			},
		},
		{
			name: "RetriedDeleteFindsSnapshotsOfDeregisteredImage",
			call: remove(made),
			script: []exchange{
				describe(400, "ec2-error.InvalidAMIID.NotFound.xml"),
				tagged("ec2-describe-snapshots.of-image.xml"),
				deregister(400, "ec2-error.InvalidAMIID.Unavailable.xml"),
				del("snap-0a1b2c3d4e5f60001", 400, "ec2-error.InvalidSnapshot.NotFound.xml"),
				del("snap-0a1b2c3d4e5f60002", 200, "ec2-delete-snapshot.xml"),
			},
		},
		{
			name: "DeleteCountsRecordedSnapshotsOnce",
			call: remove(ready),
			script: []exchange{
				describe(200, "ec2-describe-images.available.xml"),
				tagged("ec2-describe-snapshots.of-image.xml"),
				deregister(200, "ec2-deregister-image.xml"),
				del("snap-0a1b2c3d4e5f60001", 200, "ec2-delete-snapshot.xml"),
				del("snap-0a1b2c3d4e5f60002", 200, "ec2-delete-snapshot.xml"),
			},
		},
		{
			name: "RetriedDeleteFindsRecordedSnapshotsTheLookupsMiss",
			call: remove(stored),
			script: []exchange{
				describe(400, "ec2-error.InvalidAMIID.NotFound.xml"),
				tagged("ec2-describe-snapshots.empty.xml"),
				deregister(400, "ec2-error.InvalidAMIID.NotFound.xml"),
				del("snap-0a1b2c3d4e5f60001", 200, "ec2-delete-snapshot.xml"),
				del("snap-0a1b2c3d4e5f60002", 400, "ec2-error.InvalidSnapshot.NotFound.xml"),
			},
		},
		{
			name: "DeleteAlreadyDeleted",
			call: remove(made),
			script: []exchange{
				describe(200, "ec2-describe-images.empty.xml"),
				tagged("ec2-describe-snapshots.empty.xml"),
				deregister(400, "ec2-error.InvalidAMIID.NotFound.xml"),
			},
		},
	}
	runCases(t, cases, func(t *testing.T, script []exchange) snapshot.Snapshotter {
		return New(Options{EC2: ec2Client(t, script...)})[TypeInstance]
	})
	t.Run("RebootInstances", func(t *testing.T) {
		s := New(Options{RebootInstances: true, EC2: ec2Client(t,
			lookup("ec2-describe-images.empty.xml"), create("false", 200, "ec2-create-image.xml"))})[TypeInstance]
		got, err := start(req)(s)
		assertError(t, err, nil)
		if got.(snapshot.ResourceData)["image_id"] != imageID {
			t.Errorf("got %v", got)
		}
	})
}

// roundTrip returns data as the store gives it back: through JSON.
func roundTrip(t *testing.T, data snapshot.ResourceData) snapshot.ResourceData {
	t.Helper()
	b, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	var out snapshot.ResourceData
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
