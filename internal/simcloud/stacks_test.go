package simcloud

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stacksnap/stacksnap/internal/cfntemplate"
	"github.com/stacksnap/stacksnap/internal/snapshot"
)

const (
	fixtures = "../../local/stacks"
	account  = "123456789012"
	stranger = "210987654321"
)

var ctx = context.Background()

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newCloud(t *testing.T, opts Options) *Cloud {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func loadFixtures(t *testing.T, c *Cloud) []snapshot.Stack {
	t.Helper()
	stacks, err := c.LoadDir(account, fixtures)
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	return stacks
}

// wantError checks that err is an *snapshot.Error with this code and message.
func wantError(t *testing.T, err error, code snapshot.Code, message string) {
	t.Helper()
	var e *snapshot.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v, want *snapshot.Error %s %q", err, code, message)
	}
	if e.Code != code || e.Message != message {
		t.Errorf("error = %s %q, want %s %q", e.Code, e.Message, code, message)
	}
}

func TestLoadDirFixtures(t *testing.T) {
	c := newCloud(t, Options{})
	stacks := loadFixtures(t, c)

	var names []string
	for _, s := range stacks {
		names = append(names, s.Name)
	}
	wantNames := []string{"Config", "DynamoDB-Secondary-Indexes", "DynamoDB-Table",
		"EC2-Instance-With-Ephemeral-Drives", "RDS-MySQL-With-Read-Replica", "webapp"}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("stacks = %v, want %v", names, wantNames)
	}

	arn := regexp.MustCompile(`^arn:aws:cloudformation:us-east-1:123456789012:stack/([A-Za-z0-9-]+)/([0-9a-f-]{36})$`)
	for _, s := range stacks {
		t.Run(s.Name, func(t *testing.T) {
			m := arn.FindStringSubmatch(s.ARN)
			if m == nil || m[1] != s.Name || m[2] != s.ID {
				t.Errorf("ARN %q does not hold name %s and id %s", s.ARN, s.Name, s.ID)
			}
			if s.Status != "CREATE_COMPLETE" {
				t.Errorf("status = %s", s.Status)
			}
			resources, err := c.Resources(ctx, account, s)
			if err != nil {
				t.Fatal(err)
			}
			def, err := c.Definition(ctx, account, s)
			if err != nil {
				t.Fatal(err)
			}
			tpl, err := cfntemplate.Parse([]byte(def.TemplateBody))
			if err != nil {
				t.Fatal(err)
			}
			declared, err := cfntemplate.Resources(tpl)
			if err != nil {
				t.Fatal(err)
			}
			if len(resources) != len(declared) {
				t.Fatalf("%d resources, template declares %d", len(resources), len(declared))
			}
			for i, r := range resources {
				if r.LogicalID != declared[i].LogicalID || r.Type != declared[i].Type {
					t.Errorf("resource %d = %s %s, want %s %s", i, r.LogicalID, r.Type, declared[i].LogicalID, declared[i].Type)
				}
			}
		})
	}

	physical := []struct {
		stack, logicalID, resourceType, pattern string
	}{
		{"Config", "Ec2Volume", "AWS::EC2::Volume", `^vol-[0-9a-f]{17}$`},
		{"Config", "ConfigBucket", "AWS::S3::Bucket", `^Config-ConfigBucket-[0-9A-Z]{12}$`},
		{"EC2-Instance-With-Ephemeral-Drives", "EC2Instance", "AWS::EC2::Instance", `^i-[0-9a-f]{17}$`},
		{"RDS-MySQL-With-Read-Replica", "MainDB", "AWS::RDS::DBInstance", `^rds-mysql-with-read-replica-maindb-[0-9a-z]{12}$`},
		{"RDS-MySQL-With-Read-Replica", "ReplicaDB", "AWS::RDS::DBInstance", `^rds-mysql-with-read-replica-replicadb-[0-9a-z]{12}$`},
		{"DynamoDB-Table", "myDynamoDBTable", "AWS::DynamoDB::Table", `^DynamoDB-Table-myDynamoDBTable-[0-9A-Z]{12}$`},
		{"DynamoDB-Secondary-Indexes", "TableOfBooks", "AWS::DynamoDB::Table", `^DynamoDB-Secondary-Indexes-TableOfBooks-[0-9A-Z]{12}$`},
		{"webapp", "TestTable", "AWS::DynamoDB::Table", `^webapp-TestTable-[0-9A-Z]{12}$`},
	}
	for _, tt := range physical {
		t.Run(tt.stack+"/"+tt.logicalID, func(t *testing.T) {
			r := findResource(t, c, account, tt.stack, tt.logicalID)
			if r.Type != tt.resourceType {
				t.Errorf("type = %s, want %s", r.Type, tt.resourceType)
			}
			if !regexp.MustCompile(tt.pattern).MatchString(r.PhysicalID) {
				t.Errorf("physical id %q does not match %s", r.PhysicalID, tt.pattern)
			}
		})
	}
}

func findResource(t *testing.T, c *Cloud, tenant, stackName, logicalID string) snapshot.Resource {
	t.Helper()
	s, err := c.Stack(ctx, tenant, stackName)
	if err != nil {
		t.Fatal(err)
	}
	resources, err := c.Resources(ctx, tenant, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resources {
		if r.LogicalID == logicalID {
			return r
		}
	}
	t.Fatalf("stack %s has no resource %s", stackName, logicalID)
	return snapshot.Resource{}
}

// everything returns all stacks of the fixtures with their resources.
func everything(t *testing.T, c *Cloud) map[snapshot.Stack][]snapshot.Resource {
	t.Helper()
	all := map[snapshot.Stack][]snapshot.Resource{}
	for _, s := range loadFixtures(t, c) {
		resources, err := c.Resources(ctx, account, s)
		if err != nil {
			t.Fatal(err)
		}
		all[s] = resources
	}
	return all
}

func TestLoadDirIsStable(t *testing.T) {
	first := everything(t, newCloud(t, Options{}))
	t.Run("another cloud", func(t *testing.T) {
		if again := everything(t, newCloud(t, Options{})); !reflect.DeepEqual(again, first) {
			t.Error("a second cloud made different stacks")
		}
	})
	t.Run("loading twice", func(t *testing.T) {
		c := newCloud(t, Options{})
		everything(t, c)
		if again := everything(t, c); !reflect.DeepEqual(again, first) {
			t.Error("loading again changed the stacks")
		}
	})
	t.Run("another region", func(t *testing.T) {
		c := newCloud(t, Options{Region: "eu-west-1"})
		for s := range everything(t, c) {
			if _, same := first[s]; same {
				t.Errorf("stack %s has the same id in another region", s.Name)
			}
		}
	})
}

func TestDefinition(t *testing.T) {
	c := newCloud(t, Options{})
	loadFixtures(t, c)
	tests := []struct {
		stack, file string
		parameters  map[string]string
	}{
		{"DynamoDB-Table", "DynamoDB_Table.yaml", map[string]string{
			"HashKeyElementName": "sim-HashKeyElementName", // no default
			"HashKeyElementType": "S",
			"ReadCapacityUnits":  "5",
			"WriteCapacityUnits": "10",
		}},
		{"RDS-MySQL-With-Read-Replica", "RDS_MySQL_With_Read_Replica.yaml", map[string]string{
			"DBName":             "MyDatabase",
			"DBUser":             "****", // NoEcho
			"DBAllocatedStorage": "5",
			"DBInstanceClass":    "db.t3.medium",
			"EC2SecurityGroup":   "default",
			"MultiAZ":            "false",
			"EnableReadReplica":  "true",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.stack, func(t *testing.T) {
			s, err := c.Stack(ctx, account, tt.stack)
			if err != nil {
				t.Fatal(err)
			}
			def, err := c.Definition(ctx, account, s)
			if err != nil {
				t.Fatal(err)
			}
			body, err := os.ReadFile(filepath.Join(fixtures, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if def.TemplateBody != string(body) {
				t.Error("template body is not the file as loaded")
			}
			if !reflect.DeepEqual(def.Parameters, tt.parameters) {
				t.Errorf("parameters = %v, want %v", def.Parameters, tt.parameters)
			}
			if want := map[string]string{TagSource: tt.file}; !reflect.DeepEqual(def.Tags, want) {
				t.Errorf("tags = %v, want %v", def.Tags, want)
			}
		})
	}
}

func TestStackNotFound(t *testing.T) {
	c := newCloud(t, Options{})
	loadFixtures(t, c)
	config, err := c.Stack(ctx, account, "Config")
	if err != nil {
		t.Fatal(err)
	}
	deleted, err := c.Stack(ctx, account, "webapp")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteStack(account, "webapp"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"unknown name", func() error { _, err := c.Stack(ctx, account, "nope"); return err }, "nope"},
		{"other account", func() error { _, err := c.Stack(ctx, stranger, "Config"); return err }, "Config"},
		{"deleted", func() error { _, err := c.Stack(ctx, account, "webapp"); return err }, "webapp"},
		{"resources of other account", func() error { _, err := c.Resources(ctx, stranger, config); return err }, "Config"},
		{"definition of other account", func() error { _, err := c.Definition(ctx, stranger, config); return err }, "Config"},
		{"resources of deleted", func() error { _, err := c.Resources(ctx, account, deleted); return err }, "webapp"},
		{"definition of deleted", func() error { _, err := c.Definition(ctx, account, deleted); return err }, "webapp"},
		{"delete deleted", func() error { return c.DeleteStack(account, "webapp") }, "webapp"},
		{"status of other account", func() error { return c.SetStackStatus(stranger, "Config", "UPDATE_IN_PROGRESS") }, "Config"},
		{"behaviour of unknown stack", func() error { return c.SetBehaviour(account, "nope", "X", Behaviour{}) }, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, tt.call(), snapshot.CodeStackNotFound, "The Stack ("+tt.want+") could not be found.")
		})
	}
}

func TestSetStackStatus(t *testing.T) {
	c := newCloud(t, Options{})
	loadFixtures(t, c)
	for _, status := range []string{"UPDATE_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "CREATE_COMPLETE"} {
		t.Run(status, func(t *testing.T) {
			if err := c.SetStackStatus(account, "Config", status); err != nil {
				t.Fatal(err)
			}
			s, err := c.Stack(ctx, account, "Config")
			if err != nil {
				t.Fatal(err)
			}
			if s.Status != status {
				t.Errorf("status = %s, want %s", s.Status, status)
			}
		})
	}
	t.Run("unknown status", func(t *testing.T) {
		wantError(t, c.SetStackStatus(account, "Config", "BUSY"), snapshot.CodeBadRequest, "Unknown stack status BUSY.")
	})
}

func TestAddStack(t *testing.T) {
	const body = "Resources:\n  Disk:\n    Type: AWS::EC2::Volume\n"
	c := newCloud(t, Options{})
	first, err := c.AddStack(account, "disk", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	firstDisk := findResource(t, c, account, "disk", "Disk")

	t.Run("same name keeps the live stack", func(t *testing.T) {
		again, err := c.AddStack(account, "disk", []byte("Resources: {}"))
		if err != nil {
			t.Fatal(err)
		}
		if again != first {
			t.Errorf("AddStack = %+v, want %+v", again, first)
		}
		if r := findResource(t, c, account, "disk", "Disk"); r.Type != "AWS::EC2::Volume" {
			t.Errorf("the template changed: %+v", r)
		}
	})
	t.Run("other account gets its own stack", func(t *testing.T) {
		theirs, err := c.AddStack(stranger, "disk", []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if theirs.ID == first.ID {
			t.Error("two accounts share a stack id")
		}
	})
	t.Run("made again after a delete gets a new, stable id", func(t *testing.T) {
		remake := func(c *Cloud) snapshot.Stack {
			t.Helper()
			if _, err := c.AddStack(account, "disk", []byte(body)); err != nil {
				t.Fatal(err)
			}
			if err := c.DeleteStack(account, "disk"); err != nil {
				t.Fatal(err)
			}
			s, err := c.AddStack(account, "disk", []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		second := remake(c)
		if second.ID == first.ID {
			t.Error("the new stack has the deleted one's id")
		}
		if other := remake(newCloud(t, Options{})); other != second {
			t.Errorf("another cloud made %+v, want %+v", other, second)
		}
		if r := findResource(t, c, account, "disk", "Disk"); r.PhysicalID == firstDisk.PhysicalID {
			t.Error("the new stack's volume has the old one's id")
		}
	})

	errorsTests := []struct {
		name, account, stack, body, message string
	}{
		{"no account", "", "x", body, "An account is required."},
		{"name with underscore", account, "a_b", body,
			`Stack name "a_b" must start with a letter and hold only letters, digits and hyphens, at most 128.`},
		{"name starting with a digit", account, "1a", body,
			`Stack name "1a" must start with a letter and hold only letters, digits and hyphens, at most 128.`},
		{"not a template", account, "x", "- a", "Template format error: template's top level is not a mapping"},
		{"unknown tag", account, "x", "Resources: {A: {Type: !Nope X}}", "Template format error: line 1: unknown tag !Nope"},
		{"resource without type", account, "x", "Resources: {A: {}}", "Template format error: resource A has no Type"},
	}
	for _, tt := range errorsTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.AddStack(tt.account, tt.stack, []byte(tt.body))
			wantError(t, err, snapshot.CodeBadRequest, tt.message)
		})
	}
}

func TestLoadDirErrors(t *testing.T) {
	write := func(t *testing.T, files map[string]string) string {
		dir := t.TempDir()
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"two files name one stack", map[string]string{"a_b.json": `{"Resources": {}}`, "a-b.yaml": "Resources: {}"},
			"a-b.yaml and a_b.json both name stack a-b"},
		{"bad template", map[string]string{"bad.yml": "Resources: {A: {Type: !Nope X}}"},
			"bad.yml: bad_request: Template format error: line 1: unknown tag !Nope"},
		{"bad name", map[string]string{"9lives.yaml": "Resources: {}"},
			`9lives.yaml: bad_request: Stack name "9lives" must start with a letter and hold only letters, digits and hyphens, at most 128.`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newCloud(t, Options{}).LoadDir(account, write(t, tt.files))
			if err == nil || err.Error() != tt.want {
				t.Errorf("LoadDir error = %v, want %s", err, tt.want)
			}
		})
	}
	t.Run("other files are skipped", func(t *testing.T) {
		dir := write(t, map[string]string{"README.md": "# hi", "s.YAML": "Resources: {}"})
		stacks, err := newCloud(t, Options{}).LoadDir(account, dir)
		if err != nil || len(stacks) != 1 || stacks[0].Name != "s" {
			t.Errorf("LoadDir = %v, %v; want stack s", stacks, err)
		}
	})
	t.Run("missing folder", func(t *testing.T) {
		if _, err := newCloud(t, Options{}).LoadDir(account, filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("LoadDir error = %v, want not exist", err)
		}
	})
}
