package localaws

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

const (
	greetMachineARN = "arn:aws:states:us-east-1:000000000000:stateMachine:greet"
	greetExecPrefix = "arn:aws:states:us-east-1:000000000000:execution:greet:"
)

// startGreetSFN runs the server with testdata/greet.asl.json. It fails,
// never skips, when the Node tools are missing.
func startGreetSFN(t *testing.T, stateLog string) *StepFunctions {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s, err := StartStepFunctions(ctx, StepFunctionsOptions{
		StateMachines: []StateMachine{{
			ARN:            greetMachineARN,
			DefinitionPath: "testdata/greet.asl.json",
			Substitutions:  map[string]string{"Greeting": "hello from a substitution"},
		}},
		LambdaEndpoint: "http://127.0.0.1:1", // the machine has no Task
		StateLog:       stateLog,
		Stderr:         testWriter{t},
	})
	if err != nil {
		t.Fatalf("start the local Step Functions service: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// testWriter sends the server's stderr to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func waitForStatus(t *testing.T, client *sfn.Client, arn string, want types.ExecutionStatus) *sfn.DescribeExecutionOutput {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := client.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err != nil {
			t.Fatalf("DescribeExecution %s: %v", arn, err)
		}
		if out.Status == want {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("execution %s is %s, want %s", arn, out.Status, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStepFunctionsExecutions(t *testing.T) {
	stateLog := filepath.Join(t.TempDir(), "states.jsonl")
	s := startGreetSFN(t, stateLog)
	client := SFNClient(s.Endpoint)
	ctx := context.Background()

	start, err := client.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(greetMachineARN), Name: aws.String("quick"), Input: aws.String(`{"pause":false}`),
	})
	if err != nil {
		t.Fatalf("StartExecution: %v", err)
	}
	if got := aws.ToString(start.ExecutionArn); got != greetExecPrefix+"quick" {
		t.Errorf("executionArn = %s", got)
	}
	out := waitForStatus(t, client, greetExecPrefix+"quick", types.ExecutionStatusSucceeded)
	if got, want := aws.ToString(out.Output), `{"pause":false,"hello":{"greeting":"hello from a substitution"}}`; got != want {
		t.Errorf("output = %s, want %s", got, want)
	}
	if out.StartDate == nil || out.StopDate == nil || out.StopDate.Before(*out.StartDate) || time.Since(*out.StartDate) > time.Minute {
		t.Errorf("startDate %v, stopDate %v", out.StartDate, out.StopDate)
	}
	// An ended execution's name cannot be used again, whatever the input.
	_, err = client.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(greetMachineARN), Name: aws.String("quick"), Input: aws.String(`{"pause":false}`),
	})
	var exists *types.ExecutionAlreadyExists
	if !errors.As(err, &exists) {
		t.Errorf("restart of an ended execution: %v, want ExecutionAlreadyExists", err)
	}

	// A running execution: the same start again is the same execution, a
	// different input is a conflict, StopExecution aborts it.
	paused := &sfn.StartExecutionInput{StateMachineArn: aws.String(greetMachineARN), Name: aws.String("paused"), Input: aws.String(`{"pause":true}`)}
	first, err := client.StartExecution(ctx, paused)
	if err != nil {
		t.Fatalf("StartExecution: %v", err)
	}
	again, err := client.StartExecution(ctx, paused)
	if err != nil {
		t.Fatalf("idempotent StartExecution: %v", err)
	}
	if !again.StartDate.Equal(*first.StartDate) {
		t.Errorf("idempotent start: startDate %v, first %v", again.StartDate, first.StartDate)
	}
	_, err = client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(greetMachineARN), Name: aws.String("paused"), Input: aws.String(`{"pause":true,"other":1}`)})
	if !errors.As(err, &exists) {
		t.Errorf("start with another input: %v, want ExecutionAlreadyExists", err)
	}
	waitForStatus(t, client, greetExecPrefix+"paused", types.ExecutionStatusRunning)
	if _, err := client.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: first.ExecutionArn, Error: aws.String("Stopped"), Cause: aws.String("by the test")}); err != nil {
		t.Fatalf("StopExecution: %v", err)
	}
	out = waitForStatus(t, client, greetExecPrefix+"paused", types.ExecutionStatusAborted)
	if aws.ToString(out.Error) != "Stopped" || aws.ToString(out.Cause) != "by the test" || out.StopDate == nil {
		t.Errorf("aborted: error %q cause %q stopDate %v", aws.ToString(out.Error), aws.ToString(out.Cause), out.StopDate)
	}

	// ListExecutions pages newest first.
	var names []string
	pages := sfn.NewListExecutionsPaginator(client, &sfn.ListExecutionsInput{StateMachineArn: aws.String(greetMachineARN), MaxResults: 1})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListExecutions: %v", err)
		}
		for _, e := range page.Executions {
			names = append(names, aws.ToString(e.Name)+"="+string(e.Status))
		}
	}
	if got, want := strings.Join(names, " "), "paused=ABORTED quick=SUCCEEDED"; got != want {
		t.Errorf("ListExecutions = %s, want %s", got, want)
	}

	events, err := s.Events(ctx, "quick")
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if transitions, retries := Transitions(events); transitions != 2 || retries != 0 {
		t.Errorf("Transitions = %d, %d; want 2, 0 (events %+v)", transitions, retries, events)
	}
	if first, last := events[0], events[len(events)-1]; first.Type != "ExecutionStarted" || last.Type != "ExecutionSucceeded" || string(last.Output) == "" {
		t.Errorf("events go from %+v to %+v", first, last)
	}
	if _, err := s.Events(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Events of an unknown execution: %v, want a 404", err)
	}

	// Stop lets the server flush the state log: one line per event.
	s.Stop()
	log, err := os.ReadFile(stateLog)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Count(string(log), `{"execution":"`+greetExecPrefix+`quick","type":`), len(events); got != want {
		t.Errorf("state log has %d lines of execution quick, want %d:\n%s", got, want, log)
	}
}

func TestStepFunctionsErrors(t *testing.T) {
	s := startGreetSFN(t, "")
	client := SFNClient(s.Endpoint)
	ctx := context.Background()

	_, err := client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(greetExecPrefix + "never")})
	var missing *types.ExecutionDoesNotExist
	if !errors.As(err, &missing) {
		t.Errorf("DescribeExecution of an unknown execution: %v, want ExecutionDoesNotExist", err)
	}
	_, err = client.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: aws.String(greetExecPrefix + "never")})
	if !errors.As(err, &missing) {
		t.Errorf("StopExecution of an unknown execution: %v, want ExecutionDoesNotExist", err)
	}
	_, err = client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String("not-an-arn")})
	var invalidARN *types.InvalidArn
	if !errors.As(err, &invalidARN) {
		t.Errorf("DescribeExecution of a bad ARN: %v, want InvalidArn", err)
	}
	_, err = client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(greetMachineARN + "x"), Name: aws.String("a")})
	var noMachine *types.StateMachineDoesNotExist
	if !errors.As(err, &noMachine) {
		t.Errorf("StartExecution of an unknown machine: %v, want StateMachineDoesNotExist", err)
	}
	_, err = client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(greetMachineARN), Name: aws.String("a b")})
	var badName *types.InvalidName
	if !errors.As(err, &badName) {
		t.Errorf("StartExecution with a space in the name: %v, want InvalidName", err)
	}
	_, err = client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(greetMachineARN), Name: aws.String("b"), Input: aws.String("{")})
	var badInput *types.InvalidExecutionInput
	if !errors.As(err, &badInput) {
		t.Errorf("StartExecution with bad JSON input: %v, want InvalidExecutionInput", err)
	}

	req, _ := http.NewRequest(http.MethodPost, s.Endpoint+"/", strings.NewReader("{}"))
	req.Header.Set("X-Amz-Target", "AWSStepFunctions.CreateStateMachine")
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 400 || !strings.HasPrefix(string(body), `{"__type":"UnknownOperationException","message":`) {
		t.Errorf("unknown operation: %d %s", res.StatusCode, body)
	}
}

// The interpreter would run these wrongly without a word, or call real AWS,
// so the server must refuse them at start.
func TestStepFunctionsRefusesDefinitions(t *testing.T) {
	pass := `"Done": {"Type": "Pass", "End": true}`
	tests := []struct {
		name       string
		definition string
		want       string
	}{
		{"JSONata machine", `{"QueryLanguage": "JSONata", "StartAt": "Done", "States": {` + pass + `}}`, "JSONata"},
		{"JSONata expression", `{"StartAt": "Done", "States": {"Done": {"Type": "Pass", "Output": "{% $states.input %}", "End": true}}}`, "JSONata"},
		{"placeholder without substitution", `{"StartAt": "Do", "States": {"Do": {"Type": "Task", "Resource": "${Missing}", "End": true}}}`, "no substitution for ${Missing}"},
		{"Task that is not a Lambda function", `{"StartAt": "Do", "States": {"Do": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem", "End": true}}}`, "is not a Lambda function ARN"},
		{"invalid definition", `{"StartAt": "Done", "States": {"Done": {"Type": "Pass", "Next": "Nowhere"}}}`, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "machine.asl.json")
			if err := os.WriteFile(path, []byte(tt.definition), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := StartStepFunctions(context.Background(), StepFunctionsOptions{
				StateMachines:  []StateMachine{{ARN: greetMachineARN, DefinitionPath: path}},
				LambdaEndpoint: "http://127.0.0.1:1",
			})
			if err == nil {
				s.Stop()
				t.Fatal("the server started")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

// On Node < 22 a missing polyfill would let Catch: States.ALL swallow the
// TypeError of every Task; the server must not start then.
func TestStepFunctionsNeedsWithResolvers(t *testing.T) {
	modules, err := NodeModulesDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	drop := filepath.Join(dir, "drop-withresolvers.cjs")
	if err := os.WriteFile(drop, []byte("delete Promise.withResolvers;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join(filepath.Dir(modules), "sfn-server.mjs"), filepath.Join(dir, "unused.json"))
	cmd.Env = append(os.Environ(), "NODE_OPTIONS=--require "+drop)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(string(out), "Promise.withResolvers is missing") {
		t.Errorf("without Promise.withResolvers: %v, output %s", err, out)
	}
}
