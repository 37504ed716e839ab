package cfnstacks_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/stacksnap/stacksnap/internal/awsaccounts"
	"github.com/stacksnap/stacksnap/internal/awstest"
	"github.com/stacksnap/stacksnap/internal/cfnstacks"
	"github.com/stacksnap/stacksnap/internal/snapshot"
)

const (
	tenantID     = "123456789012"
	stackID      = "aaf549a0-a413-11df-adb3-5081b3858e83"
	stackARN     = "arn:aws:cloudformation:us-east-1:123456789012:stack/MyStack/" + stackID
	networkARN   = "arn:aws:cloudformation:us-east-1:123456789012:stack/MyStack-Network-1ABCDEF2GHIJ/5b9ff3a0-a414-11df-adb3-5081b3858e83"
	endpointsARN = "arn:aws:cloudformation:us-east-1:123456789012:stack/MyStack-Network-1ABCDEF2GHIJ-Endpoints-9ZYXWV8UTSRQ/6c0a04b0-a414-11df-adb3-5081b3858e83"
)

// created is the CreationTime of the sample stacks.
var created = time.Date(2010, 7, 27, 22, 28, 28, 0, time.UTC)

var myStack = snapshot.Stack{Name: "MyStack", ID: stackID, ARN: stackARN, Status: "CREATE_COMPLETE", UpdatedAt: created}

func TestStack(t *testing.T) {
	describeMyStack := call("DescribeStacks", "StackName", "MyStack")
	tests := []struct {
		name      string
		stackName string
		exchange  exchange
		want      snapshot.Stack
		err       wantError
	}{
		{name: "OK", stackName: "MyStack",
			exchange: exchange{request: describeMyStack, file: "describe-stacks.response.full.docs-via-goamz.xml"},
			want:     myStack},
		{name: "UpdateInProgress", stackName: "MyStack",
			exchange: exchange{request: describeMyStack, file: "describe-stacks.response.docs.xml",
				replace: []string{"CREATE_COMPLETE", "UPDATE_IN_PROGRESS"}},
			want: snapshot.Stack{Name: "MyStack", ID: stackID, ARN: stackARN, Status: "UPDATE_IN_PROGRESS", UpdatedAt: created}},
		{name: "UpdatedAtIsLastUpdatedTime", stackName: "MyStack",
			exchange: exchange{request: describeMyStack, file: "describe-stacks.response.docs.xml",
				replace: []string{"</CreationTime>", "</CreationTime><LastUpdatedTime>2011-03-04T05:06:07Z</LastUpdatedTime>"}},
			want: snapshot.Stack{Name: "MyStack", ID: stackID, ARN: stackARN, Status: "CREATE_COMPLETE", UpdatedAt: time.Date(2011, 3, 4, 5, 6, 7, 0, time.UTC)}},
		{name: "ReplacedStackHasItsOwnID", stackName: "MyStack",
			exchange: exchange{request: describeMyStack, file: "describe-stacks.response.docs.xml",
				replace: []string{stackID, "0b3ad5f0-b524-11ef-9cd2-0a1b2c3d4e5f"}},
			want: snapshot.Stack{Name: "MyStack", ID: "0b3ad5f0-b524-11ef-9cd2-0a1b2c3d4e5f",
				ARN: "arn:aws:cloudformation:us-east-1:123456789012:stack/MyStack/0b3ad5f0-b524-11ef-9cd2-0a1b2c3d4e5f", Status: "CREATE_COMPLETE", UpdatedAt: created}},
		{name: "ErrStackNotFound", stackName: "foo",
			exchange: exchange{request: call("DescribeStacks", "StackName", "foo"), status: 400, file: "error.ValidationError.stack-does-not-exist.xml"},
			err:      wantError{code: snapshot.CodeStackNotFound, message: "The Stack (foo) could not be found."}},
		{name: "ErrNoStackListed", stackName: "MyStack",
			exchange: exchange{request: describeMyStack, file: "describe-stacks.response.empty.derived.xml"},
			err:      wantError{code: snapshot.CodeStackNotFound, message: "The Stack (MyStack) could not be found."}},
		{name: "ErrThrottled", stackName: "MyStack",
			exchange: exchange{request: describeMyStack, status: 400, file: "error.Throttling.xml"},
			err:      wantError{throttled: true, message: "Rate exceeded"}},
		{name: "ErrAccessDenied", stackName: "MyStack",
			exchange: exchange{request: describeMyStack, status: 403, file: "error.AccessDenied.derived.xml"},
			err:      wantError{code: snapshot.CodeForbidden, message: "Access was denied to this resource."}},
		{name: "ErrOtherValidationError", stackName: "MyStack",
			exchange: exchange{request: describeMyStack, status: 400, file: "error.ValidationError.docs-via-goamz.xml"},
			err: wantError{code: snapshot.CodeInternal,
				message: "cfnstacks: describe stack MyStack: operation error CloudFormation: DescribeStacks"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stacks := newStacks(t, tt.exchange)
			got, err := stacks.Stack(context.Background(), tenantID, tt.stackName)
			if checkError(t, err, tt.err) {
				return
			}
			if got != tt.want {
				t.Errorf("Stack = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestResources(t *testing.T) {
	listRoot := call("ListStackResources", "StackName", stackARN)
	listRootPage2 := call("ListStackResources", "StackName", stackARN, "NextToken", "TXlTdGFjay1wYWdlLTI=")
	listNetwork := call("ListStackResources", "StackName", networkARN)
	listEndpoints := call("ListStackResources", "StackName", endpointsARN)
	tests := []struct {
		name      string
		exchanges []exchange
		want      []snapshot.Resource
		err       wantError
	}{
		{
			// Two pages, a nested stack in a nested stack, and deleted
			// resources (Legacy, a deleted nested stack, is not listed).
			name: "NestedAndPaged",
			exchanges: []exchange{
				{request: listRoot, file: "list-stack-resources.response.page1.derived.xml"},
				{request: listNetwork, file: "list-stack-resources.response.nested.derived.xml"},
				{request: listEndpoints, file: "list-stack-resources.response.nested-nested.derived.xml"},
				{request: listRootPage2, file: "list-stack-resources.response.page2.derived.xml"},
			},
			want: []snapshot.Resource{
				{LogicalID: "AlarmTopic", PhysicalID: "arn:aws:sns:us-east-1:123456789012:MyStack-AlarmTopic-SW4IQELG7RPJ", Type: "AWS::SNS::Topic"},
				{LogicalID: "CPUAlarmHigh", PhysicalID: "MyStack-CPUAlarmHigh-POBWQPDJA81F", Type: "AWS::CloudWatch::Alarm"},
				{LogicalID: "DBSecurityGroup", PhysicalID: "exampleteststack-dbsecuritygroup-1s5m0ez5lkk6w", Type: "AWS::RDS::DBSecurityGroup"},
				{LogicalID: "Network", PhysicalID: networkARN, Type: "AWS::CloudFormation::Stack"},
				{LogicalID: "Network.DataVolume", PhysicalID: "vol-049df61146c4d7901", Type: "AWS::EC2::Volume"},
				{LogicalID: "Network.Endpoints", PhysicalID: endpointsARN, Type: "AWS::CloudFormation::Stack"},
				{LogicalID: "Network.Endpoints.Bucket", PhysicalID: "mystack-network-endpoints-bucket-1a2b3c4d5e6f", Type: "AWS::S3::Bucket"},
				{LogicalID: "Network.VPC", PhysicalID: "vpc-0a1b2c3d4e5f67890", Type: "AWS::EC2::VPC"},
				{LogicalID: "SampleApplication", PhysicalID: "MyStack-SampleApplication-1MKNASYR3RBQL", Type: "AWS::ElasticBeanstalk::Application"},
				{LogicalID: "SampleDB", PhysicalID: "MyStack-sampledb-ycwhk1v830lx", Type: "AWS::RDS::DBInstance"},
				{LogicalID: "SampleEnvironment", PhysicalID: "myst-Samp-1AGU6ERZX6M3Q", Type: "AWS::ElasticBeanstalk::Environment"},
			},
		},
		{
			name:      "DeletedSkipped",
			exchanges: []exchange{{request: listRoot, file: "list-stack-resources.response.nested-nested.derived.xml"}},
			want: []snapshot.Resource{
				{LogicalID: "Bucket", PhysicalID: "mystack-network-endpoints-bucket-1a2b3c4d5e6f", Type: "AWS::S3::Bucket"},
			},
		},
		{
			name: "ErrThrottledInNestedStack",
			exchanges: []exchange{
				{request: listRoot, file: "list-stack-resources.response.page1.derived.xml"},
				{request: listNetwork, status: 400, file: "error.Throttling.xml"},
			},
			err: wantError{throttled: true, message: "Rate exceeded"},
		},
		{
			name:      "ErrStackNotFound",
			exchanges: []exchange{{request: listRoot, status: 400, file: "error.ValidationError.stack-does-not-exist.xml"}},
			err:       wantError{code: snapshot.CodeStackNotFound, message: "The Stack (MyStack) could not be found."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stacks := newStacks(t, tt.exchanges...)
			got, err := stacks.Resources(context.Background(), tenantID, myStack)
			if checkError(t, err, tt.err) {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Resources =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

const yamlTemplate = `AWSTemplateFormatVersion: "2010-09-09"
Description: Simple example
Parameters:
  DBPassword:
    Type: String
    NoEcho: true
Resources:
  MySQS:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "${AWS::StackName}-queue"
`

func TestDefinition(t *testing.T) {
	getTemplate := call("GetTemplate", "StackName", stackARN, "TemplateStage", "Original")
	describeByARN := call("DescribeStacks", "StackName", stackARN)
	tests := []struct {
		name      string
		exchanges []exchange
		want      snapshot.Definition
		err       wantError
	}{
		{
			// NoEcho values stay masked; an SSM parameter keeps its name,
			// not the value it resolved to.
			name: "YAMLParametersTags",
			exchanges: []exchange{
				{request: getTemplate, file: "get-template.response.yaml.derived.xml"},
				{request: describeByARN, file: "describe-stacks.response.parameters.derived.xml"},
			},
			want: snapshot.Definition{
				TemplateBody: yamlTemplate,
				Parameters: map[string]string{
					"MyKey":       "MyValue",
					"DBPassword":  "****",
					"LatestAmiId": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
				},
				Tags: map[string]string{"MyTagKey": "MyTagValue", "team": "data"},
			},
		},
		{
			name: "NoParametersOrTags",
			exchanges: []exchange{
				{request: getTemplate, file: "get-template.response.yaml.derived.xml"},
				{request: describeByARN, file: "describe-stacks.response.docs.xml"},
			},
			want: snapshot.Definition{TemplateBody: yamlTemplate, Parameters: map[string]string{}, Tags: map[string]string{}},
		},
		{
			name:      "ErrThrottled",
			exchanges: []exchange{{request: getTemplate, status: 400, file: "error.Throttling.xml"}},
			err:       wantError{throttled: true, message: "Rate exceeded"},
		},
		{
			name:      "ErrStackNotFound",
			exchanges: []exchange{{request: getTemplate, status: 400, file: "error.ValidationError.stack-does-not-exist.xml"}},
			err:       wantError{code: snapshot.CodeStackNotFound, message: "The Stack (MyStack) could not be found."},
		},
		{
			name: "ErrDescribeThrottled",
			exchanges: []exchange{
				{request: getTemplate, file: "get-template.response.yaml.derived.xml"},
				{request: describeByARN, status: 400, file: "error.Throttling.xml"},
			},
			err: wantError{throttled: true, message: "Rate exceeded"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stacks := newStacks(t, tt.exchanges...)
			got, err := stacks.Definition(context.Background(), tenantID, myStack)
			if checkError(t, err, tt.err) {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Definition =\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

// TestClientsPerTenant checks the wiring the functions use:
// awsaccounts.Clients making one CloudFormation client per tenant.
func TestClientsPerTenant(t *testing.T) {
	t.Run("OneClientPerTenant", func(t *testing.T) {
		stub := newStub(t, exchange{request: call("DescribeStacks", "StackName", "MyStack"), file: "describe-stacks.response.docs.xml"})
		accounts := &fakeAccounts{config: awsConfig(stub)}
		clients := awsaccounts.Clients(accounts, newClient)

		first, err := clients(context.Background(), tenantID)
		if err != nil {
			t.Fatal(err)
		}
		again, err := clients(context.Background(), tenantID)
		if err != nil {
			t.Fatal(err)
		}
		other, err := clients(context.Background(), "210987654321")
		if err != nil {
			t.Fatal(err)
		}
		if first != again || first == other {
			t.Errorf("clients: same tenant shares = %v, other tenant shares = %v; want true, false", first == again, first == other)
		}
		if want := []string{tenantID, "210987654321"}; !reflect.DeepEqual(accounts.asked, want) {
			t.Errorf("configs asked for %v, want %v", accounts.asked, want)
		}
		// The client is made from the tenant's config: it goes through
		// that config's HTTP client.
		if _, err := cfnstacks.New(clients).Stack(context.Background(), tenantID, "MyStack"); err != nil {
			t.Errorf("Stack: %v", err)
		}
	})
	t.Run("ErrForbidden", func(t *testing.T) {
		forbidden := snapshot.Errorf(snapshot.CodeForbidden, "Access was denied to this resource.")
		stacks := cfnstacks.New(awsaccounts.Clients(&fakeAccounts{err: forbidden}, newClient))
		_, err := stacks.Stack(context.Background(), tenantID, "MyStack")
		checkError(t, err, wantError{code: snapshot.CodeForbidden, message: "Access was denied to this resource."})
	})
}

func newClient(c aws.Config) cfnstacks.API { return cloudformation.NewFromConfig(c) }

// fakeAccounts hands out one config to every tenant, or fails.
type fakeAccounts struct {
	config aws.Config
	err    error
	asked  []string
}

func (f *fakeAccounts) Config(_ context.Context, tenantID string) (aws.Config, error) {
	f.asked = append(f.asked, tenantID)
	return f.config, f.err
}

// wantError is what a case expects to fail with; the zero value is no error.
type wantError struct {
	code      snapshot.Code // of the *snapshot.Error, or CodeInternal for any other error
	message   string        // the caller-safe message; for internal errors, the start of the text
	throttled bool          // a *snapshot.ThrottlingError, unwrapped, with message
}

// checkError fails the test unless err is what want describes, and reports
// whether there was an error (so the case has nothing more to check).
func checkError(t *testing.T, err error, want wantError) bool {
	t.Helper()
	switch {
	case want == wantError{}:
		if err != nil {
			t.Fatalf("err = %v, want none", err)
		}
		return false
	case want.throttled:
		throttled, ok := err.(*snapshot.ThrottlingError)
		if !ok || throttled.Message != want.message {
			t.Fatalf("err = %#v, want *snapshot.ThrottlingError %q", err, want.message)
		}
	case want.code == snapshot.CodeInternal:
		var domainErr *snapshot.Error
		if err == nil || errors.As(err, &domainErr) || !strings.HasPrefix(err.Error(), want.message) {
			t.Fatalf("err = %v, want an internal error starting %q", err, want.message)
		}
	default:
		if snapshot.ErrorCode(err) != want.code || snapshot.ErrorMessage(err) != want.message {
			t.Fatalf("err = %v, want %s: %s", err, want.code, want.message)
		}
	}
	return true
}

func newStacks(t *testing.T, exchanges ...exchange) *cfnstacks.Stacks {
	t.Helper()
	client := cloudformation.NewFromConfig(awsConfig(newStub(t, exchanges...)))
	return cfnstacks.New(func(_ context.Context, tenant string) (cfnstacks.API, error) {
		if tenant != tenantID {
			t.Errorf("client asked for tenant %q, want %q", tenant, tenantID)
		}
		return client, nil
	})
}

func awsConfig(transport http.RoundTripper) aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "SECRETEXAMPLE", ""),
		HTTPClient:  &http.Client{Transport: transport},
		// Throttling reaches the code at once instead of after backoff.
		Retryer: func() aws.Retryer { return aws.NopRetryer{} },
	}
}

// exchange is one request the stub expects, and its answer.
type exchange struct {
	request url.Values // the whole form the SDK sends, Version aside
	status  int        // 0 is 200
	file    string     // the body, under testdata/
	replace []string   // old, new pairs applied to the body
}

// call is the form of a Query request: Action and parameter name/value pairs.
func call(action string, params ...string) url.Values {
	form := url.Values{"Action": {action}}
	for i := 0; i+1 < len(params); i += 2 {
		form.Set(params[i], params[i+1])
	}
	return form
}

// stub is a CloudFormation endpoint that answers the expected requests, in
// any order, each once; the test fails on any other request and on any
// expected one left unasked.
type stub struct {
	t *testing.T

	mu        sync.Mutex
	exchanges []exchange
	used      []bool
}

func newStub(t *testing.T, exchanges ...exchange) *stub {
	t.Helper()
	s := &stub{t: t, exchanges: exchanges, used: make([]bool, len(exchanges))}
	t.Cleanup(func() {
		for i, used := range s.used {
			if !used {
				t.Errorf("expected request never made: %s", exchanges[i].request.Encode())
			}
		}
	})
	return s
}

func (s *stub) RoundTrip(req *http.Request) (*http.Response, error) {
	form, err := awstest.QueryForm(req)
	if err != nil {
		return nil, err
	}
	operations.Record("cloudformation:" + form.Get("Action"))
	if req.Method != http.MethodPost || req.URL.Host != "cloudformation.us-east-1.amazonaws.com" || form.Get("Version") != "2010-05-15" {
		s.t.Errorf("request %s %s Version=%s, want POST to CloudFormation's endpoint, API version 2010-05-15",
			req.Method, req.URL, form.Get("Version"))
	}
	form.Del("Version")

	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range s.exchanges {
		if s.used[i] || e.request.Encode() != form.Encode() {
			continue
		}
		s.used[i] = true
		body, err := os.ReadFile("testdata/" + e.file)
		if err != nil {
			return nil, err
		}
		status := e.status
		if status == 0 {
			status = http.StatusOK
		}
		return awstest.Response(req, status, "text/xml", strings.NewReplacer(e.replace...).Replace(string(body))), nil
	}
	s.t.Errorf("unexpected request: %s", form.Encode())
	return nil, errors.New("stub: unexpected request")
}

// TestTenantRoleRefused: a tenant that has not set up the stacksnap role
// (STS answers AccessDenied to AssumeRole) gets 403, not a 500.
func TestTenantRoleRefused(t *testing.T) {
	denied := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		body := `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code>` +
			`<Message>User: arn:aws:sts::123456789012:assumed-role/api/x is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::210987654321:role/stacksnap</Message>` +
			`</Error><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>`
		return awstest.Response(req, http.StatusForbidden, "text/xml", body), nil
	})
	cfg := awsConfig(denied)
	accounts := awsaccounts.New(cfg, tenantID, "stacksnap", sts.NewFromConfig(cfg))
	stacks := cfnstacks.New(awsaccounts.Clients(accounts, newClient))
	_, err := stacks.Stack(context.Background(), "210987654321", "MyStack")
	checkError(t, err, wantError{code: snapshot.CodeForbidden, message: "Access was denied to this resource."})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
