package simcloud

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// Kinds of artefact.
const (
	KindEBSSnapshot       = "ebs-snapshot"
	KindAMI               = "ami"
	KindDBSnapshot        = "db-snapshot"
	KindDBClusterSnapshot = "db-cluster-snapshot"
	KindDynamoDBBackup    = "dynamodb-backup"
)

// States of an artefact.
const (
	StatePending   = "pending"
	StateAvailable = "available"
	StateFailed    = "failed"
)

// Tags every artefact carries.
const (
	TagStackID    = "stacksnap:stack-id"
	TagSnapshotID = "stacksnap:snapshot-id"
	TagTenant     = "stacksnap:tenant"
	TagLogicalID  = "stacksnap:logical-id"
)

// Artefact is what a test or a person sees of an artefact.
type Artefact struct {
	ID      string
	Kind    string
	Tenant  string
	Tags    map[string]string
	State   string
	Created time.Time
}

// artefact is one artefact as the cloud keeps it. Its duration and fate
// are fixed when it is made.
type artefact struct {
	ID       string            `json:"id"`
	Kind     string            `json:"kind"`
	Tenant   string            `json:"tenant"`
	Tags     map[string]string `json:"tags"`
	Created  time.Time         `json:"created"`
	Duration time.Duration     `json:"duration"`
	Failure  string            `json:"failure,omitempty"`
	// Parent is the AMI an EBS snapshot was made for; it goes with it.
	Parent string `json:"parent,omitempty"`
}

func (a *artefact) state(now time.Time) string {
	switch {
	case now.Before(a.Created.Add(a.Duration)):
		return StatePending
	case a.Failure != "":
		return StateFailed
	default:
		return StateAvailable
	}
}

// Artefacts lists every artefact that exists, oldest first.
func (c *Cloud) Artefacts() []Artefact {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock()
	list := make([]Artefact, 0, len(c.state.Artefacts))
	for _, a := range c.state.Artefacts {
		list = append(list, Artefact{
			ID:      a.ID,
			Kind:    a.Kind,
			Tenant:  a.Tenant,
			Tags:    maps.Clone(a.Tags),
			State:   a.state(now),
			Created: a.Created,
		})
	}
	slices.SortFunc(list, func(a, b Artefact) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return list
}

// kind describes the artefact of one resource type, with AWS's messages.
type kind struct {
	resourceType string
	name         string
	idKey        string // the ResourceData key holding the artefact's id
	noResource   string // the resource is gone; %s is its physical id
	noArtefact   string // the artefact is gone; %s is its id
}

var kinds = []kind{
	{"AWS::EC2::Volume", KindEBSSnapshot, "snapshot_id",
		"The volume '%s' does not exist.", "The snapshot '%s' does not exist."},
	{"AWS::EC2::Instance", KindAMI, "image_id",
		"The instance ID '%s' does not exist", "The image id '[%s]' does not exist"},
	{"AWS::RDS::DBInstance", KindDBSnapshot, "db_snapshot_identifier",
		"DBInstance %s not found.", "DBSnapshot %s not found."},
	{"AWS::RDS::DBCluster", KindDBClusterSnapshot, "db_cluster_snapshot_identifier",
		"DBCluster %s not found.", "DBClusterSnapshot %s not found."},
	{"AWS::DynamoDB::Table", KindDynamoDBBackup, "backup_arn",
		"Requested resource not found: Table: %s not found", "Backup not found: %s"},
}

// Snapshotters returns the cloud's snapshotter of each resource type it
// makes artefacts of.
func (c *Cloud) Snapshotters() snapshot.Snapshotters {
	s := snapshot.Snapshotters{}
	for _, k := range kinds {
		s[k.resourceType] = &snapshotter{cloud: c, kind: k}
	}
	return s
}

type snapshotter struct {
	cloud *Cloud
	kind  kind
}

// Start makes the artefact of a resource, or returns the one already made
// for the same snapshot and logical id. The resource must still be in its
// live stack.
func (s *snapshotter) Start(_ context.Context, req snapshot.ArtefactRequest) (snapshot.ResourceData, error) {
	c := s.cloud
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stackByID(req.TenantID, req.StackID)
	if st == nil || !st.holds(req.Resource) {
		return nil, &snapshot.ResourceSnapshotError{Message: fmt.Sprintf(s.kind.noResource, req.Resource.PhysicalID)}
	}
	b := st.Behaviours[req.Resource.LogicalID]
	if b.ThrottleStarts > 0 {
		b.ThrottleStarts--
		st.setBehaviour(req.Resource.LogicalID, b)
		if err := c.save(); err != nil {
			return nil, err
		}
		return nil, &snapshot.ThrottlingError{Message: "Rate exceeded"}
	}
	if a := c.madeFor(s.kind.name, req); a != nil {
		return c.data(s.kind, a), nil
	}

	a := &artefact{
		ID:     c.newArtefactID(s.kind.name, req),
		Kind:   s.kind.name,
		Tenant: req.TenantID,
		Tags: map[string]string{
			TagStackID:    req.StackID,
			TagSnapshotID: req.SnapshotID,
			TagTenant:     req.TenantID,
			TagLogicalID:  req.Resource.LogicalID,
		},
		Created:  c.clock(),
		Duration: b.Duration,
		Failure:  b.Fail,
	}
	if a.Duration == 0 {
		a.Duration = c.duration
	}
	c.state.Artefacts[a.ID] = a
	if s.kind.name == KindAMI {
		// An AMI is made with one EBS snapshot per volume: here the root.
		root := *a
		root.ID = "snap-" + randomHex(17)
		root.Kind = KindEBSSnapshot
		root.Tags = maps.Clone(a.Tags)
		root.Parent = a.ID
		c.state.Artefacts[root.ID] = &root
	}
	if err := c.save(); err != nil {
		return nil, err
	}
	return c.data(s.kind, a), nil
}

// holds reports whether the stack still has the resource.
func (s *stack) holds(r snapshot.Resource) bool {
	have, ok := s.resource(r.LogicalID)
	return ok && have.PhysicalID == r.PhysicalID
}

// madeFor finds the artefact of a kind already made for the request's
// snapshot and resource; the caller holds c.mu.
func (c *Cloud) madeFor(kindName string, req snapshot.ArtefactRequest) *artefact {
	for _, a := range c.state.Artefacts {
		if a.Kind == kindName && a.Parent == "" && a.Tenant == req.TenantID &&
			a.Tags[TagSnapshotID] == req.SnapshotID && a.Tags[TagLogicalID] == req.Resource.LogicalID {
			return a
		}
	}
	return nil
}

// data returns the ResourceData naming an artefact; the caller holds c.mu.
func (c *Cloud) data(k kind, a *artefact) snapshot.ResourceData {
	data := snapshot.ResourceData{k.idKey: a.ID}
	if k.name == KindAMI {
		var snaps []string
		for _, child := range c.state.Artefacts {
			if child.Parent == a.ID {
				snaps = append(snaps, child.ID)
			}
		}
		slices.Sort(snaps)
		data["snapshot_ids"] = snaps
	}
	return data
}

// nonIdentifier matches what RDS identifiers cannot hold.
var nonIdentifier = regexp.MustCompile(`[^a-z0-9]+`)

// newArtefactID makes a random id shaped as AWS shapes the kind's ids.
func (c *Cloud) newArtefactID(kindName string, req snapshot.ArtefactRequest) string {
	switch kindName {
	case KindEBSSnapshot:
		return "snap-" + randomHex(17)
	case KindAMI:
		return "ami-" + randomHex(17)
	case KindDynamoDBBackup:
		return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s/backup/%013d-%s",
			c.region, req.TenantID, req.Resource.PhysicalID, c.clock().UnixMilli(), randomHex(8))
	default: // RDS snapshot identifiers: letters, digits and single hyphens
		logical := nonIdentifier.ReplaceAllString(strings.ToLower(req.Resource.LogicalID), "-")
		return "stacksnap-" + strings.Trim(logical, "-") + "-" + randomHex(8)
	}
}

func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// Check reports an artefact pending until its duration has passed, then
// done, or failed with its reason. An artefact that no longer exists is a
// failure too.
func (s *snapshotter) Check(_ context.Context, req snapshot.ArtefactRequest, data snapshot.ResourceData) (snapshot.Progress, error) {
	id, err := s.id(data)
	if err != nil {
		return snapshot.Progress{}, err
	}
	c := s.cloud
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.visible(s.kind, req.TenantID, id)
	if a == nil {
		return snapshot.Progress{Failure: fmt.Sprintf(s.kind.noArtefact, id)}, nil
	}
	switch a.state(c.clock()) {
	case StatePending:
		return snapshot.Progress{}, nil
	case StateFailed:
		return snapshot.Progress{Failure: a.Failure}, nil
	default:
		return snapshot.Progress{Done: true}, nil
	}
}

// Delete removes an artefact, an AMI with its snapshots, whatever its
// state. One that is already gone is not an error.
func (s *snapshotter) Delete(_ context.Context, tenantID string, data snapshot.ResourceData) error {
	id, err := s.id(data)
	if err != nil {
		return err
	}
	c := s.cloud
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.visible(s.kind, tenantID, id) == nil {
		return nil
	}
	delete(c.state.Artefacts, id)
	maps.DeleteFunc(c.state.Artefacts, func(_ string, a *artefact) bool { return a.Parent == id })
	return c.save()
}

// visible finds an artefact of the kind that the tenant can see; the caller
// holds c.mu.
func (c *Cloud) visible(k kind, tenantID, id string) *artefact {
	a := c.state.Artefacts[id]
	if a == nil || a.Kind != k.name || a.Tenant != tenantID {
		return nil
	}
	return a
}

func (s *snapshotter) id(data snapshot.ResourceData) (string, error) {
	id, _ := data[s.kind.idKey].(string)
	if id == "" {
		return "", fmt.Errorf("resource data of %s has no %s", s.kind.resourceType, s.kind.idKey)
	}
	return id, nil
}
