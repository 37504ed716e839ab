package sfnworkflows

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/smithy-go"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

const testMachineARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:stacksnap-snapshot"

// stubSFN answers the Step Functions JSON 1.0 protocol with a canned
// response and records the requests.
type stubSFN struct {
	status int
	body   string

	targets []string
	params  []map[string]string
}

func (s *stubSFN) RoundTrip(r *http.Request) (*http.Response, error) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	var params map[string]string
	if err := json.Unmarshal(raw, &params); err != nil {
		return nil, err
	}
	s.targets = append(s.targets, r.Header.Get("X-Amz-Target"))
	s.params = append(s.params, params)
	return &http.Response{
		StatusCode: s.status,
		Header:     http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:       io.NopCloser(strings.NewReader(s.body)),
		Request:    r,
	}, nil
}

func newStubbed(status int, body string) (*Workflows, *stubSFN) {
	stub := &stubSFN{status: status, body: body}
	client := sfn.New(sfn.Options{
		Region:       "eu-west-1",
		Credentials:  credentials.NewStaticCredentialsProvider("dummy", "dummy", ""),
		BaseEndpoint: aws.String("http://sfn.stub"),
		HTTPClient:   &http.Client{Transport: stub},
		// One attempt, so a throttled call fails at once.
		RetryMaxAttempts: 1,
	})
	return New(client, testMachineARN), stub
}

var testInput = snapshot.WorkflowInput{SnapshotID: "snap-1", TenantID: "tenant-1", StackID: "stack-1", StackName: "web"}

func TestStart(t *testing.T) {
	w, stub := newStubbed(200, `{"executionArn":"arn:aws:states:eu-west-1:123456789012:execution:stacksnap-snapshot:snap-1","startDate":1733243353.401}`)
	if err := w.Start(context.Background(), testInput); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if len(stub.targets) != 1 || stub.targets[0] != "AWSStepFunctions.StartExecution" {
		t.Fatalf("requests %v", stub.targets)
	}
	got := stub.params[0]
	if got["stateMachineArn"] != testMachineARN || got["name"] != "snap-1" {
		t.Errorf("StartExecution params %v", got)
	}
	var in snapshot.WorkflowInput
	if err := json.Unmarshal([]byte(got["input"]), &in); err != nil || in != testInput {
		t.Errorf("input %s decodes to %+v (%v), want %+v", got["input"], in, err, testInput)
	}
}

func TestStartAlreadyExists(t *testing.T) {
	w, _ := newStubbed(400, `{"__type":"ExecutionAlreadyExists","message":"Execution Already Exists: 'snap-1'"}`)
	if err := w.Start(context.Background(), testInput); err != nil {
		t.Fatalf("Start of a snapshot whose execution exists: %v, want nil", err)
	}
}

func TestStartThrottled(t *testing.T) {
	w, _ := newStubbed(400, `{"__type":"ThrottlingException","message":"Rate exceeded"}`)
	err := w.Start(context.Background(), testInput)
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ThrottlingException" {
		t.Fatalf("Start when throttled: %v, want a ThrottlingException", err)
	}
	if !strings.Contains(err.Error(), "snap-1") {
		t.Errorf("error %q does not name the snapshot", err)
	}
}

func TestState(t *testing.T) {
	tests := []struct {
		status     string
		want       snapshot.ExecutionState
		wantDetail string
	}{
		{"RUNNING", snapshot.ExecutionRunning, ""},
		{"PENDING_REDRIVE", snapshot.ExecutionRunning, ""},
		{"SUCCEEDED", snapshot.ExecutionEnded, "SUCCEEDED"},
		{"FAILED", snapshot.ExecutionEnded, "FAILED"},
		{"TIMED_OUT", snapshot.ExecutionEnded, "TIMED_OUT"},
		{"ABORTED", snapshot.ExecutionEnded, "ABORTED"},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			w, stub := newStubbed(200, `{"executionArn":"x","stateMachineArn":"y","name":"snap-1","status":"`+tt.status+`","startDate":1733243353.401,"input":"{}"}`)
			state, detail, err := w.State(context.Background(), "snap-1")
			if err != nil {
				t.Fatalf("State: %v", err)
			}
			if state != tt.want || detail != tt.wantDetail {
				t.Errorf("State = %s, %q; want %s, %q", state, detail, tt.want, tt.wantDetail)
			}
			if stub.targets[0] != "AWSStepFunctions.DescribeExecution" {
				t.Errorf("request %s", stub.targets[0])
			}
			if got, want := stub.params[0]["executionArn"], "arn:aws:states:eu-west-1:123456789012:execution:stacksnap-snapshot:snap-1"; got != want {
				t.Errorf("executionArn = %s, want %s", got, want)
			}
		})
	}
}

func TestStateMissing(t *testing.T) {
	w, _ := newStubbed(400, `{"__type":"ExecutionDoesNotExist","message":"Execution Does Not Exist"}`)
	state, detail, err := w.State(context.Background(), "snap-1")
	if err != nil || state != snapshot.ExecutionMissing || detail != "" {
		t.Fatalf("State = %s, %q, %v; want MISSING", state, detail, err)
	}
}

func TestStateErrors(t *testing.T) {
	w, _ := newStubbed(400, `{"__type":"ThrottlingException","message":"Rate exceeded"}`)
	_, _, err := w.State(context.Background(), "snap-1")
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ThrottlingException" {
		t.Errorf("State when throttled: %v, want the ThrottlingException", err)
	}

	w, _ = newStubbed(200, `{"status":"SLEEPING","startDate":1733243353.401}`)
	if _, _, err := w.State(context.Background(), "snap-1"); err == nil || !strings.Contains(err.Error(), "SLEEPING") {
		t.Errorf("State of an unknown status: %v, want an error naming it", err)
	}
}
