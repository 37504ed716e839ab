package simcloud

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/stacksnap/stacksnap/internal/cfntemplate"
	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// TagSource is the stack tag naming the file LoadDir made the stack from.
const TagSource = "stacksnap:source"

// stack is one CloudFormation stack, live or deleted.
type stack struct {
	Account      string               `json:"account"`
	Name         string               `json:"name"`
	ID           string               `json:"id"`
	ARN          string               `json:"arn"`
	Status       string               `json:"status"`
	TemplateBody string               `json:"template_body"`
	Parameters   map[string]string    `json:"parameters"`
	Tags         map[string]string    `json:"tags"`
	Resources    []snapshot.Resource  `json:"resources"` // sorted by logical id
	Behaviours   map[string]Behaviour `json:"behaviours,omitempty"`
	// Updated is when an update last started (UPDATE_* status), as
	// CloudFormation's LastUpdatedTime; zero when never updated.
	Updated time.Time `json:"updated,omitempty"`
}

func (s *stack) view() snapshot.Stack {
	return snapshot.Stack{Name: s.Name, ID: s.ID, ARN: s.ARN, Status: s.Status, UpdatedAt: s.Updated}
}

func (s *stack) live() bool { return s.Status != statusDeleted }

func (s *stack) resource(logicalID string) (snapshot.Resource, bool) {
	i := slices.IndexFunc(s.Resources, func(r snapshot.Resource) bool { return r.LogicalID == logicalID })
	if i < 0 {
		return snapshot.Resource{}, false
	}
	return s.Resources[i], true
}

const statusDeleted = "DELETE_COMPLETE"

// stackStatuses are the StackStatus values CloudFormation reports.
var stackStatuses = []string{
	"CREATE_IN_PROGRESS", "CREATE_FAILED", "CREATE_COMPLETE",
	"ROLLBACK_IN_PROGRESS", "ROLLBACK_FAILED", "ROLLBACK_COMPLETE",
	"DELETE_IN_PROGRESS", "DELETE_FAILED", statusDeleted,
	"UPDATE_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_COMPLETE", "UPDATE_FAILED",
	"UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_FAILED",
	"UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE",
	"REVIEW_IN_PROGRESS",
	"IMPORT_IN_PROGRESS", "IMPORT_COMPLETE",
	"IMPORT_ROLLBACK_IN_PROGRESS", "IMPORT_ROLLBACK_FAILED", "IMPORT_ROLLBACK_COMPLETE",
}

// stackName is what CloudFormation allows as a stack name.
var stackName = regexp.MustCompile(`^[A-Za-z][-A-Za-z0-9]{0,127}$`)

// stackNamespace makes stack ids: a fixed namespace, so that the same
// account, region and name always give the same id.
var stackNamespace = uuid.MustParse("5b0c7d1e-3f2a-4c6b-9e8d-7a1f2b3c4d5e")

func errStackNotFound(name string) error {
	return snapshot.Errorf(snapshot.CodeStackNotFound, "The Stack (%s) could not be found.", name)
}

// LoadDir makes a live stack of account from every *.json, *.yaml and *.yml
// template in dir, named after the file (without extension, "_" turned into
// "-"), and returns the stacks in file order. As AddStack does, it keeps a
// stack that is already live as it is.
func (c *Cloud) LoadDir(account, dir string) ([]snapshot.Stack, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var stacks []snapshot.Stack
	files := map[string]string{} // stack name → file, to catch two files naming one stack
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || !slices.Contains([]string{".json", ".yaml", ".yml"}, strings.ToLower(ext)) {
			continue
		}
		name := strings.ReplaceAll(strings.TrimSuffix(e.Name(), ext), "_", "-")
		if other, dup := files[name]; dup {
			return nil, fmt.Errorf("%s and %s both name stack %s", other, e.Name(), name)
		}
		files[name] = e.Name()
		body, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		s, err := c.addStack(account, name, body, map[string]string{TagSource: e.Name()})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		stacks = append(stacks, s)
	}
	return stacks, nil
}

// AddStack makes a live stack from a template, in CREATE_COMPLETE with one
// resource per template resource (every one: Conditions are not evaluated).
// A live stack of that name is kept as it is and returned. The id is derived
// from account, region and name, so it is the same on every run; a stack
// made again after a delete gets a new id, as in CloudFormation.
//
// Parameters take their Default, or "sim-<name>" when they have none;
// NoEcho ones show as "****", as CloudFormation masks them.
func (c *Cloud) AddStack(account, name string, templateBody []byte) (snapshot.Stack, error) {
	return c.addStack(account, name, templateBody, map[string]string{})
}

func (c *Cloud) addStack(account, name string, body []byte, tags map[string]string) (snapshot.Stack, error) {
	if account == "" {
		return snapshot.Stack{}, snapshot.Errorf(snapshot.CodeBadRequest, "An account is required.")
	}
	if !stackName.MatchString(name) {
		return snapshot.Stack{}, snapshot.Errorf(snapshot.CodeBadRequest,
			"Stack name %q must start with a letter and hold only letters, digits and hyphens, at most 128.", name)
	}
	tpl, err := cfntemplate.Parse(body)
	if err != nil {
		return snapshot.Stack{}, snapshot.Errorf(snapshot.CodeBadRequest, "Template format error: %v", err)
	}
	resources, err := cfntemplate.Resources(tpl)
	if err != nil {
		return snapshot.Stack{}, snapshot.Errorf(snapshot.CodeBadRequest, "Template format error: %v", err)
	}
	params, err := cfntemplate.Parameters(tpl)
	if err != nil {
		return snapshot.Stack{}, snapshot.Errorf(snapshot.CodeBadRequest, "Template format error: %v", err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.liveStack(account, name); s != nil {
		return s.view(), nil
	}
	s := &stack{
		Account:      account,
		Name:         name,
		ID:           c.stackID(account, name),
		Status:       "CREATE_COMPLETE",
		TemplateBody: string(body),
		Parameters:   parameterValues(params),
		Tags:         tags,
	}
	s.ARN = fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/%s/%s", c.region, account, name, s.ID)
	for _, r := range resources {
		s.Resources = append(s.Resources, snapshot.Resource{
			LogicalID:  r.LogicalID,
			PhysicalID: physicalID(s, r.LogicalID, r.Type),
			Type:       r.Type,
		})
	}
	c.state.Stacks = append(c.state.Stacks, s)
	return s.view(), c.save()
}

// stackID derives a stack's id. Earlier, deleted stacks of the same name
// count in, so that a stack made again gets an id of its own.
func (c *Cloud) stackID(account, name string) string {
	key := account + "/" + c.region + "/" + name
	earlier := 0
	for _, s := range c.state.Stacks {
		if s.Account == account && s.Name == name {
			earlier++
		}
	}
	if earlier > 0 {
		key += "/" + strconv.Itoa(earlier)
	}
	return uuid.NewSHA1(stackNamespace, []byte(key)).String()
}

func parameterValues(params map[string]cfntemplate.Parameter) map[string]string {
	values := make(map[string]string, len(params))
	for name, p := range params {
		switch {
		case p.NoEcho:
			values[name] = "****"
		case p.HasDefault:
			values[name] = p.Default
		default:
			values[name] = "sim-" + name
		}
	}
	return values
}

// physicalID makes a resource's physical id, shaped as AWS shapes it for
// the type, from the stack id and logical id alone so that it never changes.
func physicalID(s *stack, logicalID, resourceType string) string {
	sum := sha256.Sum256([]byte(s.ID + "/" + logicalID))
	hex := fmt.Sprintf("%x", sum)[:17]
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	suffix := make([]byte, 12)
	for i := range suffix {
		suffix[i] = alphabet[int(sum[i])%len(alphabet)]
	}
	switch resourceType {
	case "AWS::EC2::Volume":
		return "vol-" + hex
	case "AWS::EC2::Instance":
		return "i-" + hex
	case "AWS::RDS::DBInstance", "AWS::RDS::DBCluster":
		// RDS identifiers are lowercase.
		return strings.ToLower(s.Name + "-" + logicalID + "-" + string(suffix))
	default:
		return s.Name + "-" + logicalID + "-" + string(suffix)
	}
}

// liveStack finds a live stack by name; the caller holds c.mu.
func (c *Cloud) liveStack(account, name string) *stack {
	for _, s := range c.state.Stacks {
		if s.Account == account && s.Name == name && s.live() {
			return s
		}
	}
	return nil
}

// stackByID finds a live stack by id; the caller holds c.mu.
func (c *Cloud) stackByID(account, id string) *stack {
	for _, s := range c.state.Stacks {
		if s.Account == account && s.ID == id && s.live() {
			return s
		}
	}
	return nil
}

// Stack finds a live stack of the tenant's account by name.
func (c *Cloud) Stack(_ context.Context, tenantID, name string) (snapshot.Stack, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.liveStack(tenantID, name)
	if s == nil {
		return snapshot.Stack{}, errStackNotFound(name)
	}
	return s.view(), nil
}

// Resources lists the resources of a live stack, found by its id, sorted by
// logical id. The simulation has no nested stacks.
func (c *Cloud) Resources(_ context.Context, tenantID string, st snapshot.Stack) ([]snapshot.Resource, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stackByID(tenantID, st.ID)
	if s == nil {
		return nil, errStackNotFound(st.Name)
	}
	return slices.Clone(s.Resources), nil
}

// Definition returns the template body as it was loaded, the parameter
// values and the tags of a live stack, found by its id.
func (c *Cloud) Definition(_ context.Context, tenantID string, st snapshot.Stack) (snapshot.Definition, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stackByID(tenantID, st.ID)
	if s == nil {
		return snapshot.Definition{}, errStackNotFound(st.Name)
	}
	return snapshot.Definition{
		TemplateBody: s.TemplateBody,
		Parameters:   maps.Clone(s.Parameters),
		Tags:         maps.Clone(s.Tags),
	}, nil
}

// DeleteStack deletes a live stack: it goes to DELETE_COMPLETE and is no
// longer found by name. Its artefacts stay, as snapshots outlive stacks.
func (c *Cloud) DeleteStack(account, name string) error {
	return c.SetStackStatus(account, name, statusDeleted)
}

// SetStackStatus sets the StackStatus of a live stack, e.g.
// UPDATE_IN_PROGRESS to make it busy and CREATE_COMPLETE to free it. An
// unknown stack is an *snapshot.Error with CodeStackNotFound, an unknown
// status one with CodeBadRequest.
func (c *Cloud) SetStackStatus(account, name, status string) error {
	if !slices.Contains(stackStatuses, status) {
		return snapshot.Errorf(snapshot.CodeBadRequest, "Unknown stack status %s.", status)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.liveStack(account, name)
	if s == nil {
		return errStackNotFound(name)
	}
	if strings.HasPrefix(status, "UPDATE_") && !strings.HasPrefix(s.Status, "UPDATE_") {
		s.Updated = c.clock()
	}
	s.Status = status
	return c.save()
}

// Behaviour is how the artefacts of one resource behave.
type Behaviour struct {
	// Duration is how long a new artefact stays pending; 0 means the
	// cloud's ArtefactDuration.
	Duration time.Duration `json:"duration,omitempty"`
	// Fail, when set, makes new artefacts end in error with this reason.
	Fail string `json:"fail,omitempty"`
	// ThrottleStarts makes the next N Start calls fail with a
	// *snapshot.ThrottlingError.
	ThrottleStarts int `json:"throttle_starts,omitempty"`
}

// SetBehaviour sets how the artefacts of a resource of a live stack behave,
// from the next Start on: an artefact keeps the duration and fate it was
// made with. An unknown stack is an *snapshot.Error with CodeStackNotFound,
// an unknown resource one with CodeNotFound.
func (c *Cloud) SetBehaviour(account, stackName, logicalID string, b Behaviour) error {
	if b.Duration < 0 || b.ThrottleStarts < 0 {
		return snapshot.Errorf(snapshot.CodeBadRequest, "Duration and ThrottleStarts cannot be negative.")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.liveStack(account, stackName)
	if s == nil {
		return errStackNotFound(stackName)
	}
	if _, ok := s.resource(logicalID); !ok {
		return snapshot.Errorf(snapshot.CodeNotFound, "The Resource (%s) could not be found in Stack %s.", logicalID, stackName)
	}
	s.setBehaviour(logicalID, b)
	return c.save()
}

func (s *stack) setBehaviour(logicalID string, b Behaviour) {
	if b == (Behaviour{}) {
		delete(s.Behaviours, logicalID)
		return
	}
	if s.Behaviours == nil {
		s.Behaviours = map[string]Behaviour{}
	}
	s.Behaviours[logicalID] = b
}
