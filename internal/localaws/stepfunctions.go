package localaws

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
)

// StateMachine is a state machine the local Step Functions service runs.
type StateMachine struct {
	ARN            string            // arn:aws:states:REGION:ACCOUNT:stateMachine:NAME
	DefinitionPath string            // the ASL file, with ${Name} placeholders
	Substitutions  map[string]string // DefinitionSubstitutions, as in the SAM template
}

// StepFunctionsOptions configures StartStepFunctions.
type StepFunctionsOptions struct {
	StateMachines []StateMachine
	// LambdaEndpoint serves the Lambda Invoke API for every Task state
	// (see LambdaInvokeHandler), e.g. http://127.0.0.1:PORT.
	LambdaEndpoint string
	// WaitOverridesMs replaces the wait of the named Wait states, and
	// RetryOverridesMs the retry interval of the named states, in ms.
	WaitOverridesMs  map[string]int
	RetryOverridesMs map[string]int
	// StateLog, if set, is a file each execution event is appended to as a
	// JSON line.
	StateLog string
	Stderr   io.Writer // also receives the server's stderr; nil discards it
}

// StepFunctions is a running node/sfn-server.mjs: the Step Functions API
// (StartExecution, DescribeExecution, ListExecutions, StopExecution) over
// aws-local-stepfunctions.
type StepFunctions struct {
	Endpoint string // http://127.0.0.1:PORT

	proc *child
}

const (
	stepFunctionsReadyTimeout = 10 * time.Second
	// Stop gives the server this long to flush its state log after SIGTERM.
	stepFunctionsStopGrace = 2 * time.Second
	listeningPrefix        = "sfn-local listening on "
)

// sfnServerConfig is the JSON config file sfn-server.mjs reads.
type sfnServerConfig struct {
	Port                     int                `json:"port"`
	StateMachines            []sfnServerMachine `json:"stateMachines"`
	LambdaEndpoint           string             `json:"lambdaEndpoint"`
	WaitTimeOverridesMs      map[string]int     `json:"waitTimeOverridesMs,omitempty"`
	RetryIntervalOverridesMs map[string]int     `json:"retryIntervalOverridesMs,omitempty"`
	StateLog                 string             `json:"stateLog,omitempty"`
}

type sfnServerMachine struct {
	ARN            string            `json:"arn"`
	DefinitionPath string            `json:"definitionPath"`
	Substitutions  map[string]string `json:"substitutions"`
}

// StartStepFunctions runs node/sfn-server.mjs as a child process and returns
// once it listens. The server refuses, and this returns an error with its
// stderr, a definition it would run wrongly: JSONata, a ${Name} without a
// substitution, a Task that is not a Lambda function. ctx bounds the start
// only; call Stop to end the process.
func StartStepFunctions(ctx context.Context, opts StepFunctionsOptions) (*StepFunctions, error) {
	modules, err := NodeModulesDir()
	if err != nil {
		return nil, err
	}
	nodeDir := filepath.Dir(modules)
	server := filepath.Join(nodeDir, "sfn-server.mjs")
	polyfill := filepath.Join(nodeDir, "polyfill-withresolvers.cjs")
	if _, err := os.Stat(filepath.Join(modules, "aws-local-stepfunctions")); err != nil {
		return nil, fmt.Errorf("localaws: aws-local-stepfunctions is not installed: run `make test` or `cd node && npm ci`: %w", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("localaws: node is not on PATH: %w", err)
	}

	cfgPath, err := writeSFNServerConfig(opts)
	if err != nil {
		return nil, err
	}
	// The server reads its config before it listens; after that (or a
	// failure) the file is not needed.
	defer os.Remove(cfgPath)

	cmd := exec.Command(node, server, cfgPath)
	// Quoted, so a repository path with spaces still works.
	cmd.Env = append(os.Environ(), "NODE_OPTIONS="+strings.TrimSpace(os.Getenv("NODE_OPTIONS")+` --require "`+polyfill+`"`))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("localaws: start sfn-server: %w", err)
	}
	s := &StepFunctions{proc: newChild("sfn-server", cmd, opts.Stderr, stepFunctionsStopGrace)}
	endpoint := make(chan string, 1)
	err = s.proc.start(func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			if ep, ok := strings.CutPrefix(lines.Text(), listeningPrefix); ok {
				endpoint <- ep
				break
			}
		}
		// Keep reading, so the server never blocks on a full pipe.
		_, _ = io.Copy(io.Discard, stdout)
	})
	if err != nil {
		return nil, err
	}

	timer := time.NewTimer(stepFunctionsReadyTimeout)
	defer timer.Stop()
	select {
	case s.Endpoint = <-endpoint:
		return s, nil
	case <-s.proc.Exited():
		err = errors.New("exited before it listened")
	case <-timer.C:
		err = fmt.Errorf("not listening after %s", stepFunctionsReadyTimeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	return nil, s.proc.abort("sfn-server", err)
}

func writeSFNServerConfig(opts StepFunctionsOptions) (string, error) {
	cfg := sfnServerConfig{
		LambdaEndpoint:           opts.LambdaEndpoint,
		WaitTimeOverridesMs:      opts.WaitOverridesMs,
		RetryIntervalOverridesMs: opts.RetryOverridesMs,
		StateLog:                 opts.StateLog,
	}
	for _, m := range opts.StateMachines {
		path, err := filepath.Abs(m.DefinitionPath)
		if err != nil {
			return "", fmt.Errorf("localaws: state machine %s: %w", m.ARN, err)
		}
		cfg.StateMachines = append(cfg.StateMachines, sfnServerMachine{ARN: m.ARN, DefinitionPath: path, Substitutions: m.Substitutions})
	}
	body, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("localaws: sfn-server config: %w", err)
	}
	f, err := os.CreateTemp("", "sfn-server-*.json")
	if err != nil {
		return "", fmt.Errorf("localaws: sfn-server config: %w", err)
	}
	_, err = f.Write(body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("localaws: sfn-server config: %w", err)
	}
	return f.Name(), nil
}

// Stop ends the server and its process group and waits for it to exit: it
// asks first, so the state log is flushed, then kills. It is safe to call
// more than once.
func (s *StepFunctions) Stop() { s.proc.Stop() }

// Event is one entry of an execution's event log, as aws-local-stepfunctions
// records it.
type Event struct {
	// ExecutionStarted, StateEntered, StateExited, StateFailed,
	// StateRetried, StateCaught, MapIteration*, ParallelBranch*,
	// ExecutionSucceeded, ExecutionFailed, ExecutionAborted, ExecutionTimeout.
	Type      string          `json:"type"`
	Timestamp int64           `json:"timestamp"` // Unix milliseconds
	State     *EventState     `json:"state,omitempty"`
	Index     *int            `json:"index,omitempty"`  // the Map iteration an inner state's event comes from
	Input     json.RawMessage `json:"input,omitempty"`  // ExecutionStarted
	Output    json.RawMessage `json:"output,omitempty"` // ExecutionSucceeded
	Error     string          `json:"Error,omitempty"`  // *Failed events
	Cause     string          `json:"Cause,omitempty"`
	Retry     *EventRetry     `json:"retry,omitempty"` // StateRetried
}

// EventState is the state an event is about.
type EventState struct {
	Name   string          `json:"name"`
	Type   string          `json:"type"`
	Input  json.RawMessage `json:"input,omitempty"`
	Output json.RawMessage `json:"output,omitempty"`
}

// EventRetry tells which retrier of a state fired, and its attempt number.
type EventRetry struct {
	Retrier json.RawMessage `json:"retrier"`
	Attempt int             `json:"attempt"`
}

// Transitions counts an execution's state transitions the way AWS bills
// them (every state entered, Map and Parallel inner states included, plus
// every retry), and the retries alone.
func Transitions(events []Event) (transitions, retries int) {
	for _, e := range events {
		switch e.Type {
		case "StateEntered":
			transitions++
		case "StateRetried":
			transitions++
			retries++
		}
	}
	return transitions, retries
}

// Events returns the event log of an execution so far, by its name (or its
// execution ARN, when several state machines have executions of that name).
func (s *StepFunctions) Events(ctx context.Context, name string) ([]Event, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/executions/"+url.PathEscape(name)+"/events", nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("localaws: events of %s: %w", name, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("localaws: events of %s: %w", name, err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("localaws: events of %s: HTTP %d: %s", name, res.StatusCode, body)
	}
	var events []Event
	if err := json.Unmarshal(body, &events); err != nil {
		return nil, fmt.Errorf("localaws: events of %s: %w", name, err)
	}
	return events, nil
}

// SFNClient returns a Step Functions client for a local endpoint, with dummy
// static credentials (the local server checks none).
func SFNClient(endpoint string) *sfn.Client {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("dummy", "dummy", ""),
	}
	return sfn.NewFromConfig(cfg, func(o *sfn.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
}
