package samtemplate

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stacksnap/stacksnap/internal/awsaccounts"
	"github.com/stacksnap/stacksnap/internal/awssnap"
	"github.com/stacksnap/stacksnap/internal/cfnstacks"
	"github.com/stacksnap/stacksnap/internal/dynamostore"
	"github.com/stacksnap/stacksnap/internal/sfnworkflows"
)

// methodsOf names the IAM actions of a narrow SDK interface: an adapter can
// call nothing else, so its interface is its list of operations.
func methodsOf[API any](service string) []string {
	t := reflect.TypeFor[API]()
	out := make([]string, t.NumMethod())
	for i := range t.NumMethod() {
		out[i] = service + ":" + t.Method(i).Name
	}
	return out
}

// operations lists, for each function, exactly the AWS operations its code
// calls. The adapters' lists are checked against what their tests saw the
// SDK send (cfnstacks, awssnap, awsaccounts) or are their interfaces.
var operations = map[string][]string{
	"ApiFunction": concat(
		methodsOf[dynamostore.API]("dynamodb"),
		methodsOf[sfnworkflows.API]("states"),
		// The API only looks stacks up (snapshot.Service calls Stacks.Stack).
		[]string{"cloudformation:DescribeStacks"},
		awsaccounts.Operations,
	),
	// The events function reads and updates records (Service.Reconcile),
	// and asks how the execution ended.
	"EventsFunction": concat(
		[]string{"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"},
		[]string{"states:DescribeExecution"},
	),
	"WorkflowFunction": concat(
		methodsOf[dynamostore.API]("dynamodb"),
		cfnstacks.Operations,
		awssnap.SnapshotOperations,
		awsaccounts.Operations,
	),
}

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, op := range l {
			if !slices.Contains(out, op) {
				out = append(out, op)
			}
		}
	}
	sort.Strings(out)
	return out
}

func TestPoliciesGrantExactlyWhatTheCodeCalls(t *testing.T) {
	for _, fn := range load(t).Functions() {
		t.Run(fn.LogicalID, func(t *testing.T) {
			var granted []string
			for _, s := range Statements(fn) {
				if s.Effect != "Allow" {
					t.Errorf("statement %s: Effect %s", s.Sid, s.Effect)
				}
				for _, a := range s.Actions {
					if a == "*" || a[len(a)-1] == '*' {
						t.Errorf("statement %s grants a wildcard action %s", s.Sid, a)
					}
				}
				granted = append(granted, s.Actions...)
			}
			got := concat(granted)
			want := operations[fn.LogicalID]
			for _, op := range want {
				if !slices.Contains(got, op) {
					t.Errorf("missing: the code calls %s, the policy does not grant it", op)
				}
			}
			for _, op := range got {
				if !slices.Contains(want, op) {
					t.Errorf("extra: the policy grants %s, the code never calls it", op)
				}
			}
		})
	}
}

// TestRecordActionsAreScopedToTheTable: the functions' own table is named
// by ARN, never "*".
func TestRecordActionsAreScopedToTheTable(t *testing.T) {
	for _, fn := range load(t).Functions() {
		found := false
		for _, s := range Statements(fn) {
			if s.Sid != "SnapshotRecords" {
				continue
			}
			found = true
			for _, r := range s.Resources {
				if r == "*" {
					t.Errorf("%s: SnapshotRecords on *", fn.LogicalID)
				}
			}
		}
		if !found {
			t.Errorf("%s: no SnapshotRecords statement", fn.LogicalID)
		}
	}
}

// TestDistributedMapMayRunItsChildren: a Distributed Map starts child
// executions of its own state machine, which its role must allow.
func TestDistributedMapMayRunItsChildren(t *testing.T) {
	for _, sm := range load(t).Resources("AWS::Serverless::StateMachine") {
		uri, _ := sm.Properties["DefinitionUri"].(string)
		body, err := os.ReadFile(filepath.Join(repo, uri))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), `"DISTRIBUTED"`) {
			continue
		}
		var granted []string
		for _, s := range Statements(sm) {
			granted = append(granted, s.Actions...)
		}
		for _, want := range []string{"states:StartExecution", "states:DescribeExecution", "states:StopExecution"} {
			if !slices.Contains(granted, want) {
				t.Errorf("%s: a Distributed Map needs %s on its own state machine", sm.LogicalID, want)
			}
		}
		if _, named := sm.Properties["Name"]; !named {
			t.Errorf("%s: unnamed, its policy cannot name it without a circular reference", sm.LogicalID)
		}
	}
}
