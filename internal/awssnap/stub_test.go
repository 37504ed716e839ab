package awssnap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/rds"

	"github.com/stacksnap/stacksnap/internal/awstest"
	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// The ids of the snapshot the tests make; testdata uses the same.
const (
	tenant     = "123456789012"
	stackID    = "6a7e8feb-0c1d-4e2f-8a9b-1c2d3e4f5a6b"
	snapshotID = "5b2ae3a0-0c62-4b1e-9a4e-2f1d6c3b7a10"
)

func request(resourceType, logicalID, physicalID string) snapshot.ArtefactRequest {
	return snapshot.ArtefactRequest{
		Key:       snapshot.Key{TenantID: tenant, StackID: stackID, SnapshotID: snapshotID},
		StackName: "teststack",
		Resource:  snapshot.Resource{LogicalID: logicalID, PhysicalID: physicalID, Type: resourceType},
	}
}

// exchange is one request the test expects and the reply it gets.
type exchange struct {
	action string            // the operation the request must call
	params map[string]string // parameters the request must carry
	status int               // HTTP status of the reply; 0 means 200
	file   string            // body of the reply, in testdata
}

// stub is an AWS endpoint that plays a script of exchanges. It stands
// in for the HTTP client of a real SDK client, so requests and replies
// go through the SDK's own serialisation and error handling.
type stub struct {
	t       *testing.T
	service string // IAM prefix: ec2, rds, dynamodb
	script  []exchange
	calls   int
}

// operationList is an exported list of IAM actions and the actions the
// tests saw called by the Snapshotter methods it is for.
type operationList struct {
	name     string
	listed   []string
	uncalled []string // listed, but authorised rather than called
	seen     awstest.Recorder
}

// record notes an operation a call made; t fails if the list lacks it.
func (l *operationList) record(t *testing.T, operation string) {
	t.Helper()
	if !slices.Contains(l.listed, operation) {
		t.Errorf("called %s, which %s does not list", operation, l.name)
	}
	l.seen.Record(operation)
}

// check fails if the list names an action that no test saw called, the
// uncalled ones aside.
func (l *operationList) check() error {
	unseen := slices.DeleteFunc(l.seen.Unseen(l.listed), func(op string) bool { return slices.Contains(l.uncalled, op) })
	if len(unseen) > 0 {
		return fmt.Errorf("%s lists actions no test made: %v", l.name, unseen)
	}
	return nil
}

var (
	snapshotOperations = &operationList{name: "SnapshotOperations", listed: SnapshotOperations, uncalled: tagOnCreate}
	deleteOperations   = &operationList{name: "DeleteOperations", listed: DeleteOperations}
)

// tagOnCreate are the SnapshotOperations no code calls: EC2 and RDS
// authorise the tags of a create call as these actions.
var tagOnCreate = []string{"ec2:CreateTags", "rds:AddTagsToResource"}

// listKey is the context key under which a call tells the stubs the
// operationList of the method it runs (see start, check and remove).
type listKey struct{}

func (s *stub) Do(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	action, params := parseRequest(s.t, r, body)
	operation := s.service + ":" + action
	if list, ok := r.Context().Value(listKey{}).(*operationList); ok {
		list.record(s.t, operation)
	} else {
		s.t.Errorf("called %s outside start, check or remove", operation)
	}

	s.calls++
	if s.calls > len(s.script) {
		s.t.Errorf("request %d: unexpected %s %v", s.calls, action, params)
		return awstest.Response(r, http.StatusBadRequest, "application/json", `{}`), nil
	}
	ex := s.script[s.calls-1]
	if action != ex.action {
		s.t.Errorf("request %d: called %s, want %s", s.calls, action, ex.action)
	}
	for k, want := range ex.params {
		if got, ok := params[k]; !ok || got != want {
			s.t.Errorf("request %d (%s): %s = %q, want %q", s.calls, action, k, got, want)
		}
	}
	b, err := os.ReadFile(filepath.Join("testdata", ex.file))
	if err != nil {
		s.t.Fatal(err)
	}
	status := ex.status
	if status == 0 {
		status = http.StatusOK
	}
	contentType := "text/xml"
	if s.service == "dynamodb" {
		contentType = "application/x-amz-json-1.0"
	}
	return awstest.Response(r, status, contentType, string(b)), nil
}

// done fails the test if part of the script was not played.
func (s *stub) done() {
	s.t.Helper()
	if s.calls < len(s.script) {
		s.t.Errorf("made %d requests, want %d: next would be %s", s.calls, len(s.script), s.script[s.calls].action)
	}
}

// parseRequest reads the operation and its parameters: the form of a
// Query request (EC2, RDS), or the top-level fields of a JSON one
// (DynamoDB), whose operation is in X-Amz-Target.
func parseRequest(t *testing.T, r *http.Request, body []byte) (string, map[string]string) {
	params := map[string]string{}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		var fields map[string]any
		if err := json.Unmarshal(body, &fields); err != nil {
			t.Errorf("JSON request body: %v", err)
		}
		for k, v := range fields {
			params[k] = fmt.Sprint(v)
		}
		return target[strings.LastIndexByte(target, '.')+1:], params
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		t.Errorf("Query request body: %v", err)
	}
	for k := range form {
		params[k] = form.Get(k)
	}
	return form.Get("Action"), params
}

// The clients below are real SDK clients whose HTTP client is the stub.
// Their retryer does not retry, so that each exchange is one attempt.

func ec2Client(t *testing.T, script ...exchange) func(context.Context, string) (EC2API, error) {
	return stubClient(t, "ec2", script, func(s *stub) EC2API {
		return ec2.New(ec2.Options{Region: "us-east-1", HTTPClient: s, Retryer: aws.NopRetryer{}, Credentials: aws.AnonymousCredentials{}})
	})
}

func rdsClient(t *testing.T, script ...exchange) func(context.Context, string) (RDSAPI, error) {
	return stubClient(t, "rds", script, func(s *stub) RDSAPI {
		return rds.New(rds.Options{Region: "us-east-1", HTTPClient: s, Retryer: aws.NopRetryer{}, Credentials: aws.AnonymousCredentials{}})
	})
}

func dynamoDBClient(t *testing.T, script ...exchange) func(context.Context, string) (DynamoDBAPI, error) {
	return stubClient(t, "dynamodb", script, func(s *stub) DynamoDBAPI {
		return dynamodb.New(dynamodb.Options{Region: "us-east-1", HTTPClient: s, Retryer: aws.NopRetryer{}, Credentials: aws.AnonymousCredentials{}})
	})
}

// stubClient makes, with newClient, a client whose stub for service plays
// script, and returns a function that hands it to the tests' tenant.
func stubClient[API any](t *testing.T, service string, script []exchange, newClient func(*stub) API) func(context.Context, string) (API, error) {
	s := &stub{t: t, service: service, script: script}
	t.Cleanup(s.done)
	client := newClient(s)
	return func(_ context.Context, tenantID string) (API, error) {
		if tenantID != tenant {
			t.Errorf("client asked for tenant %q, want %q", tenantID, tenant)
		}
		return client, nil
	}
}

// call is what a case does with its snapshotter. Its context tells the
// stubs which operation list must name the requests it makes.
type call func(s snapshot.Snapshotter) (any, error)

func start(req snapshot.ArtefactRequest) call {
	ctx := context.WithValue(context.Background(), listKey{}, snapshotOperations)
	return func(s snapshot.Snapshotter) (any, error) { return s.Start(ctx, req) }
}

func check(req snapshot.ArtefactRequest, data snapshot.ResourceData) call {
	ctx := context.WithValue(context.Background(), listKey{}, snapshotOperations)
	return func(s snapshot.Snapshotter) (any, error) { return s.Check(ctx, req, data) }
}

func remove(data snapshot.ResourceData) call {
	ctx := context.WithValue(context.Background(), listKey{}, deleteOperations)
	return func(s snapshot.Snapshotter) (any, error) { return nil, s.Delete(ctx, tenant, data) }
}

// stubCase is one table row of a snapshotter's tests: a call, the
// exchanges it must have with AWS, and its result.
type stubCase struct {
	name    string
	call    call
	script  []exchange
	want    any   // ResourceData, Progress, or nil
	wantErr error // nil, a *snapshot.ThrottlingError, *snapshot.BusyError or *snapshot.ResourceSnapshotError, or otherError
}

// otherError is an expected error that is neither throttling, busy nor
// permanent; it must contain the text.
type otherError string

func (e otherError) Error() string { return string(e) }

func throttled(message string) error { return &snapshot.ThrottlingError{Message: message} }

func busyErr(message string) error { return &snapshot.BusyError{Message: message} }

func permanentErr(message string) error { return &snapshot.ResourceSnapshotError{Message: message} }

// runCases runs each case against the snapshotter that build makes from
// the case's script.
func runCases(t *testing.T, cases []stubCase, build func(t *testing.T, script []exchange) snapshot.Snapshotter) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.call(build(t, tc.script))
			assertError(t, err, tc.wantErr)
			if err == nil && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

// assertError checks the type and the message of an error.
func assertError(t *testing.T, got, want error) {
	t.Helper()
	var throttling *snapshot.ThrottlingError
	var busy *snapshot.BusyError
	var failed *snapshot.ResourceSnapshotError
	switch want := want.(type) {
	case nil:
		if got != nil {
			t.Fatalf("error %T %q, want none", got, got)
		}
	case otherError:
		if got == nil || errors.As(got, &throttling) || errors.As(got, &busy) || errors.As(got, &failed) || !strings.Contains(got.Error(), string(want)) {
			t.Fatalf("error %T %v, want an unclassified error containing %q", got, got, want)
		}
	default:
		if reflect.TypeOf(got) != reflect.TypeOf(want) || got.Error() != want.Error() {
			t.Fatalf("error %T %q,\nwant  %T %q", got, got, want, want)
		}
	}
}

// TestMain also checks, once every test has run, that SnapshotOperations
// lists no IAM action that the stubs never saw Start or Check call, and
// DeleteOperations none they never saw Delete call, besides the tagging
// permissions no code calls. (The stubs fail a test whose call makes an
// operation its list does not name.)
func TestMain(m *testing.M) {
	awstest.Main(m, func() error { return errors.Join(snapshotOperations.check(), deleteOperations.check()) })
}
