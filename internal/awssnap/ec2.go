package awssnap

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// EC2API is the part of the EC2 client the volume and instance
// snapshotters call.
type EC2API interface {
	CreateSnapshot(ctx context.Context, in *ec2.CreateSnapshotInput, optFns ...func(*ec2.Options)) (*ec2.CreateSnapshotOutput, error)
	DescribeSnapshots(ctx context.Context, in *ec2.DescribeSnapshotsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
	DeleteSnapshot(ctx context.Context, in *ec2.DeleteSnapshotInput, optFns ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error)
	CreateImage(ctx context.Context, in *ec2.CreateImageInput, optFns ...func(*ec2.Options)) (*ec2.CreateImageOutput, error)
	DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	DeregisterImage(ctx context.Context, in *ec2.DeregisterImageInput, optFns ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error)
}

// Keys of the resource data of EC2 resources.
const (
	keySnapshotID = "snapshot_id" // EBS snapshot of a volume
	keyImageID    = "image_id"    // AMI of an instance
	keyImageName  = "image_name"  // its name, also the Name tag of its EBS snapshots
	// The AMI's EBS snapshots, known once it is available: a delete finds
	// them even when the AMI is gone and the Name tag lookup misses them.
	keySnapshotIDs = "snapshot_ids"
	// Other EBS snapshots of a volume's request, made by a retried start
	// that did not see the first one's yet: Delete removes them too.
	keyExtraSnapshotIDs = "extra_snapshot_ids"
	// The values of the stacksnap:snapshot-id and stacksnap:logical-id
	// tags of a volume's EBS snapshots, recorded by Start: Delete looks
	// up every snapshot of the request by them, extra ones that no Check
	// recorded included.
	keySnapshotTagSnapshotID = "snapshot_tag_snapshot_id"
	keySnapshotTagLogicalID  = "snapshot_tag_logical_id"
)

// volumes snapshots an AWS::EC2::Volume to an EBS snapshot.
type volumes struct {
	client func(ctx context.Context, tenantID string) (EC2API, error)
}

// Start makes the EBS snapshot of the volume, or returns the one an
// earlier attempt made: CreateSnapshot takes no client token, so the tags
// are how a retry recognises it.
func (v volumes) Start(ctx context.Context, req snapshot.ArtefactRequest) (snapshot.ResourceData, error) {
	api, err := v.client(ctx, req.TenantID)
	if err != nil {
		return nil, fmt.Errorf("EC2 client of tenant %s: %w", req.TenantID, err)
	}
	volumeID := req.Resource.PhysicalID
	subject := "the volume " + volumeID
	found, err := api.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters:  append(ownFilters(req), filter("volume-id", volumeID), filter("status", "pending", "completed")),
	})
	if err != nil {
		return nil, classify(err, subject)
	}
	if len(found.Snapshots) > 0 {
		return volumeData(req, aws.ToString(found.Snapshots[0].SnapshotId)), nil
	}
	out, err := api.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{
		VolumeId:          aws.String(volumeID),
		Description:       aws.String(description(req)),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSnapshot, Tags: ec2Tags(tags(req))}},
	})
	if err != nil {
		return nil, classify(err, subject)
	}
	return volumeData(req, aws.ToString(out.SnapshotId)), nil
}

// volumeData is the resource data Start records: the EBS snapshot, and
// the tags by which Delete finds every snapshot of the request.
func volumeData(req snapshot.ArtefactRequest, snapshotID string) snapshot.ResourceData {
	return snapshot.ResourceData{
		keySnapshotID:            snapshotID,
		keySnapshotTagSnapshotID: req.SnapshotID,
		keySnapshotTagLogicalID:  req.Resource.LogicalID,
	}
}

// Check reads the state of the EBS snapshot. Once it is complete, it also
// records any other snapshot tagged for the same request (see done).
func (v volumes) Check(ctx context.Context, req snapshot.ArtefactRequest, data snapshot.ResourceData) (snapshot.Progress, error) {
	id := dataString(data, keySnapshotID)
	if id == "" {
		return snapshot.Progress{}, fmt.Errorf("resource data of %s has no %s", req.Resource.LogicalID, keySnapshotID)
	}
	api, err := v.client(ctx, req.TenantID)
	if err != nil {
		return snapshot.Progress{}, fmt.Errorf("EC2 client of tenant %s: %w", req.TenantID, err)
	}
	out, err := api.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
	if errorCode(err) == "InvalidSnapshot.NotFound" || (err == nil && len(out.Snapshots) == 0) {
		return snapshot.Progress{Failure: "EBS snapshot " + id + " no longer exists"}, nil
	}
	if err != nil {
		return snapshot.Progress{}, classify(err, "the EBS snapshot "+id)
	}
	s := out.Snapshots[0]
	switch s.State {
	case types.SnapshotStateCompleted:
		found, err := taggedSnapshots(ctx, api, req.SnapshotID, req.Resource.LogicalID)
		if err != nil {
			return snapshot.Progress{}, classify(err, "the volume "+req.Resource.PhysicalID)
		}
		return done(data, keySnapshotID, found, keyExtraSnapshotIDs), nil
	case types.SnapshotStatePending:
		return snapshot.Progress{}, nil
	case types.SnapshotStateError:
		return snapshot.Progress{Failure: "EBS snapshot " + id + " failed: " + aws.ToString(s.StateMessage)}, nil
	}
	// recoverable, recovering: someone deleted it to the Recycle Bin.
	return snapshot.Progress{Failure: "EBS snapshot " + id + " is " + string(s.State)}, nil
}

// Delete deletes the EBS snapshot, any extra ones Check recorded, and
// every other snapshot tagged for the same request: a retried start may
// have made one that no Check recorded, as the snapshot failed before.
// Each is deleted once; one already gone is deleted. Data recorded before
// Start kept the tags has no lookup: only its recorded snapshots go.
func (v volumes) Delete(ctx context.Context, tenantID string, data snapshot.ResourceData) error {
	id := dataString(data, keySnapshotID)
	if id == "" {
		return nil
	}
	api, err := v.client(ctx, tenantID)
	if err != nil {
		return fmt.Errorf("EC2 client of tenant %s: %w", tenantID, err)
	}
	ids := append([]string{id}, dataStrings(data, keyExtraSnapshotIDs)...)
	tagSnapshot, tagLogical := dataString(data, keySnapshotTagSnapshotID), dataString(data, keySnapshotTagLogicalID)
	if tagSnapshot != "" && tagLogical != "" {
		found, err := taggedSnapshots(ctx, api, tagSnapshot, tagLogical)
		if err != nil {
			return classify(err, "the EBS snapshots of the resource "+tagLogical)
		}
		ids = append(ids, found...)
	}
	for _, s := range unique(ids) {
		if err := deleteSnapshot(ctx, api, s); err != nil {
			return err
		}
	}
	return nil
}

// taggedSnapshots lists the ids of the account's EBS snapshots tagged with
// that snapshot id and logical id, in every state, over all pages.
func taggedSnapshots(ctx context.Context, api EC2API, snapshotID, logicalID string) ([]string, error) {
	in := &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: tagFilters(snapshotID, logicalID)}
	var ids []string
	for {
		out, err := api.DescribeSnapshots(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, s := range out.Snapshots {
			ids = append(ids, aws.ToString(s.SnapshotId))
		}
		if aws.ToString(out.NextToken) == "" {
			return ids, nil
		}
		in.NextToken = out.NextToken
	}
}

func deleteSnapshot(ctx context.Context, api EC2API, id string) error {
	_, err := api.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(id)})
	if err == nil || errorCode(err) == "InvalidSnapshot.NotFound" {
		return nil
	}
	return classify(err, "the EBS snapshot "+id)
}

// instances snapshots an AWS::EC2::Instance to an AMI, which holds an EBS
// snapshot of each of the instance's volumes.
type instances struct {
	client func(ctx context.Context, tenantID string) (EC2API, error)
	reboot bool
}

// Start makes the AMI of the instance, or returns the one an earlier
// attempt made (CreateImage takes no client token either): found by its
// tags, or, when that lookup lags, by the name CreateImage finds taken.
// As the name is unique, a retried start never makes a second AMI, and
// Check has no extra one to look for.
func (i instances) Start(ctx context.Context, req snapshot.ArtefactRequest) (snapshot.ResourceData, error) {
	api, err := i.client(ctx, req.TenantID)
	if err != nil {
		return nil, fmt.Errorf("EC2 client of tenant %s: %w", req.TenantID, err)
	}
	subject := "the instance " + req.Resource.PhysicalID
	name := imageName(req)
	found, err := api.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners:  []string{"self"},
		Filters: append(ownFilters(req), filter("state", "pending", "available")),
	})
	if err != nil {
		return nil, classify(err, subject)
	}
	if len(found.Images) > 0 {
		return snapshot.ResourceData{keyImageID: aws.ToString(found.Images[0].ImageId), keyImageName: name}, nil
	}
	// The AMI's snapshots get the Name tag too, so that a delete still
	// finds them when the AMI is gone.
	imageTags := ec2Tags(append(tags(req), tag{"Name", name}))
	out, err := api.CreateImage(ctx, &ec2.CreateImageInput{
		InstanceId:  aws.String(req.Resource.PhysicalID),
		Name:        aws.String(name),
		Description: aws.String(description(req)),
		NoReboot:    aws.Bool(!i.reboot),
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeImage, Tags: imageTags},
			{ResourceType: types.ResourceTypeSnapshot, Tags: imageTags},
		},
	})
	if errorCode(err) == "InvalidAMIName.Duplicate" {
		return adoptImage(ctx, api, req, name, err)
	}
	if err != nil {
		return nil, classify(err, subject)
	}
	return snapshot.ResourceData{keyImageID: aws.ToString(out.ImageId), keyImageName: name}, nil
}

// adoptImage accepts the AMI that holds our name if it is tagged with the
// request's snapshot and resource: an earlier attempt made it, but the tag
// lookup of this one did not see it yet (EC2's describes are eventually
// consistent). Anyone else's AMI of that name fails the start with dup,
// the error of CreateImage.
func adoptImage(ctx context.Context, api EC2API, req snapshot.ArtefactRequest, name string, dup error) (snapshot.ResourceData, error) {
	subject := "the instance " + req.Resource.PhysicalID
	out, err := api.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners:  []string{"self"},
		Filters: []types.Filter{filter("name", name)},
	})
	if err != nil {
		return nil, classify(err, subject)
	}
	for _, image := range out.Images {
		if ownTags(req, ec2TagMap(image.Tags)) {
			return snapshot.ResourceData{keyImageID: aws.ToString(image.ImageId), keyImageName: name}, nil
		}
	}
	return nil, classify(dup, subject)
}

// Check reads the state of the AMI.
func (i instances) Check(ctx context.Context, req snapshot.ArtefactRequest, data snapshot.ResourceData) (snapshot.Progress, error) {
	id := dataString(data, keyImageID)
	if id == "" {
		return snapshot.Progress{}, fmt.Errorf("resource data of %s has no %s", req.Resource.LogicalID, keyImageID)
	}
	api, err := i.client(ctx, req.TenantID)
	if err != nil {
		return snapshot.Progress{}, fmt.Errorf("EC2 client of tenant %s: %w", req.TenantID, err)
	}
	out, err := api.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if imageGone(err) || (err == nil && len(out.Images) == 0) {
		return snapshot.Progress{Failure: "AMI " + id + " no longer exists"}, nil
	}
	if err != nil {
		return snapshot.Progress{}, classify(err, "the AMI "+id)
	}
	image := out.Images[0]
	switch image.State {
	case types.ImageStateAvailable:
		return snapshot.Progress{Done: true, Data: snapshot.ResourceData{
			keyImageID:     id,
			keyImageName:   dataString(data, keyImageName),
			keySnapshotIDs: mappedSnapshots(image),
		}}, nil
	case types.ImageStatePending, types.ImageStateTransient:
		return snapshot.Progress{}, nil
	case types.ImageStateFailed, types.ImageStateInvalid, types.ImageStateError:
		reason := "no reason given"
		if image.StateReason != nil {
			reason = aws.ToString(image.StateReason.Message)
		}
		return snapshot.Progress{Failure: "AMI " + id + " failed: " + reason}, nil
	}
	// deregistered, disabled: someone else acted on it.
	return snapshot.Progress{Failure: "AMI " + id + " is " + string(image.State)}, nil
}

// Delete deregisters the AMI, then deletes its EBS snapshots, which
// deregistering leaves behind. What is already gone counts as deleted.
func (i instances) Delete(ctx context.Context, tenantID string, data snapshot.ResourceData) error {
	id := dataString(data, keyImageID)
	if id == "" {
		return nil
	}
	api, err := i.client(ctx, tenantID)
	if err != nil {
		return fmt.Errorf("EC2 client of tenant %s: %w", tenantID, err)
	}
	snapshotIDs, err := imageSnapshots(ctx, api, id, dataString(data, keyImageName), dataStrings(data, keySnapshotIDs))
	if err != nil {
		return err
	}
	_, err = api.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(id)})
	if err != nil && !imageGone(err) {
		return classify(err, "the AMI "+id)
	}
	for _, s := range snapshotIDs {
		if err := deleteSnapshot(ctx, api, s); err != nil {
			return err
		}
	}
	return nil
}

// imageSnapshots finds the EBS snapshots of an AMI: those recorded when
// it became available, those in its block device mappings while it
// exists, and those with its Name tag, which still finds them when the AMI
// is gone (a delete retried after the deregistration) or failed before
// mapping them.
func imageSnapshots(ctx context.Context, api EC2API, imageID, name string, recorded []string) ([]string, error) {
	ids := map[string]bool{}
	for _, id := range recorded {
		ids[id] = true
	}
	images, err := api.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{imageID}})
	if err != nil && !imageGone(err) {
		return nil, classify(err, "the AMI "+imageID)
	}
	if err == nil {
		for _, image := range images.Images {
			for _, id := range mappedSnapshots(image) {
				ids[id] = true
			}
		}
	}
	if name != "" {
		tagged, err := api.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{
			OwnerIds: []string{"self"},
			Filters:  []types.Filter{filter("tag:Name", name), filter("tag-key", tagSnapshotID)},
		})
		if err != nil {
			return nil, classify(err, "the snapshots of the AMI "+imageID)
		}
		for _, s := range tagged.Snapshots {
			ids[aws.ToString(s.SnapshotId)] = true
		}
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	return sorted, nil
}

// mappedSnapshots lists the EBS snapshots in an AMI's block device
// mappings, in their order; never nil, so that stored data says [].
func mappedSnapshots(image types.Image) []string {
	ids := []string{}
	for _, m := range image.BlockDeviceMappings {
		if m.Ebs != nil && m.Ebs.SnapshotId != nil {
			ids = append(ids, *m.Ebs.SnapshotId)
		}
	}
	return ids
}

// imageGone reports an error saying the AMI does not exist (any more).
func imageGone(err error) bool {
	code := errorCode(err)
	return code == "InvalidAMIID.NotFound" || code == "InvalidAMIID.Unavailable"
}

// imageName names an AMI: 3-128 letters, digits and ()[] ./-'@_ .
func imageName(req snapshot.ArtefactRequest) string {
	return artefactName(req, 128, func(r rune) bool {
		return isAlphanumeric(r) || strings.ContainsRune("()[] ./-'@_", r)
	})
}

// ownFilters match the artefacts tagged with the request's snapshot and
// resource.
func ownFilters(req snapshot.ArtefactRequest) []types.Filter {
	return tagFilters(req.SnapshotID, req.Resource.LogicalID)
}

// tagFilters match the artefacts tagged with that snapshot id and logical
// id.
func tagFilters(snapshotID, logicalID string) []types.Filter {
	return []types.Filter{
		filter("tag:"+tagSnapshotID, snapshotID),
		filter("tag:"+tagLogicalID, logicalID),
	}
}

func filter(name string, values ...string) types.Filter {
	return types.Filter{Name: aws.String(name), Values: values}
}

func ec2TagMap(ts []types.Tag) map[string]string {
	m := make(map[string]string, len(ts))
	for _, t := range ts {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func ec2Tags(ts []tag) []types.Tag {
	out := make([]types.Tag, len(ts))
	for i, t := range ts {
		out[i] = types.Tag{Key: aws.String(t.key), Value: aws.String(t.value)}
	}
	return out
}
