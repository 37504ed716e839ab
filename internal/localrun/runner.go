// Package localrun runs the whole of stacksnap on one machine, with no AWS
// account: the API on a loopback port, DynamoDB (dynalite), the real state
// machine executed by aws-local-stepfunctions with the Go task code behind
// its Task states, and a simulated cloud loaded with CloudFormation
// templates. `make local` and the end-to-end tests start it.
package localrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/stacksnap/stacksnap/internal/cfntemplate"
	"github.com/stacksnap/stacksnap/internal/dynamostore"
	"github.com/stacksnap/stacksnap/internal/httpapi"
	"github.com/stacksnap/stacksnap/internal/localaws"
	"github.com/stacksnap/stacksnap/internal/sfnworkflows"
	"github.com/stacksnap/stacksnap/internal/simcloud"
	"github.com/stacksnap/stacksnap/internal/snapshot"
	"github.com/stacksnap/stacksnap/internal/taskhandler"
)

// Names of the local stand-ins of the deployed resources.
const (
	TableName          = "stacksnap-snapshots"
	workflowFunction   = "stacksnap-workflow"
	stateMachineName   = "stacksnap-snapshot"
	waitStateName      = "WaitForArtefact"
	defaultLockGrace   = 2 * time.Minute
	defaultWaitMs      = 500
	defaultArtefactDur = 3 * time.Second
)

// Options configure a local run.
type Options struct {
	// RepoDir is the repository's root (statemachine/, node/); found from
	// the working directory if empty.
	RepoDir string
	// DataDir keeps the DynamoDB data and the simulated cloud's state
	// across restarts; empty keeps everything in memory.
	DataDir string
	// StacksDir holds CloudFormation templates loaded as stacks of Account.
	StacksDir string
	Account   string
	Region    string
	// APIAddr is where the API listens; 127.0.0.1:0 picks a free port.
	APIAddr string
	// Limit is max_snapshots_per_stack: -1 no limit, 0 (the zero value)
	// forbids every snapshot.
	Limit int
	// LockGrace: see snapshot.Service.
	LockGrace time.Duration
	// ArtefactDuration is how long a simulated artefact takes.
	ArtefactDuration time.Duration
	// WaitMs replaces the wait between checks of an artefact, so a local
	// snapshot takes seconds; RetryOverridesMs replaces retry intervals of
	// the named states (tests set them to 0).
	WaitMs           int
	RetryOverridesMs map[string]int
	// Stacks and Snapshotters replace the simulated cloud (the real AWS
	// adapters); nil uses the simulated cloud.
	Stacks       snapshot.Stacks
	Snapshotters snapshot.Snapshotters
	// Log receives the runner's and the tools' logs.
	Log io.Writer
}

// Runner is a running local stacksnap.
type Runner struct {
	APIURL   string
	Cloud    *simcloud.Cloud // nil with real AWS adapters
	Stacks   []snapshot.Stack
	StepFns  *localaws.StepFunctions
	Store    *dynamostore.Store
	Account  string
	servers  []*http.Server
	dynalite *localaws.Dynalite
	dataLock *os.File
}

// Start starts everything; Stop stops it. On error, what was started is
// stopped again.
func Start(ctx context.Context, opts Options) (r *Runner, err error) {
	opts = withDefaults(opts)
	logger := slog.New(slog.NewTextHandler(opts.Log, nil))
	r = &Runner{Account: opts.Account}
	defer func() {
		if err != nil {
			r.Stop()
			r = nil
		}
	}()
	repo, err := repoDir(opts.RepoDir)
	if err != nil {
		return r, err
	}

	dynaliteOpts := localaws.DynaliteOptions{Stderr: opts.Log}
	cloudOpts := simcloud.Options{Region: opts.Region, ArtefactDuration: opts.ArtefactDuration}
	if opts.DataDir != "" {
		dynaliteOpts.Path = filepath.Join(opts.DataDir, "dynamodb")
		cloudOpts.StatePath = filepath.Join(opts.DataDir, "cloud.json")
		if err := os.MkdirAll(dynaliteOpts.Path, 0o755); err != nil {
			return r, err
		}
		if r.dataLock, err = lockDir(opts.DataDir); err != nil {
			return r, err
		}
	}
	if r.dynalite, err = localaws.StartDynalite(ctx, dynaliteOpts); err != nil {
		return r, err
	}
	ddb := localaws.DynamoDBClient(r.dynalite.Endpoint)
	if err := dynamostore.CreateTable(ctx, ddb, TableName); err != nil {
		return r, fmt.Errorf("create table: %w", err)
	}
	r.Store = dynamostore.New(ddb, TableName)

	stacks, snapshotters := opts.Stacks, opts.Snapshotters
	if stacks == nil {
		if r.Cloud, err = simcloud.New(cloudOpts); err != nil {
			return r, err
		}
		if r.Stacks, err = r.Cloud.LoadDir(opts.Account, opts.StacksDir); err != nil {
			return r, err
		}
		stacks, snapshotters = r.Cloud, r.Cloud.Snapshotters()
	}

	tasks := &snapshot.Tasks{
		Store: r.Store, Stacks: stacks, Snapshotters: snapshotters,
		ParseTemplate: cfntemplate.Parse,
		// Seconds; the local Wait state is overridden by WaitMs, so the
		// busy limit counts checks here rather than time.
		FirstWait: 1, MaxWait: 30, BusyLimit: 60,
		Log: logger,
	}
	handle := taskhandler.New(tasks)
	lambdaURL, err := r.serve("127.0.0.1:0", localaws.LambdaInvokeHandler(map[string]func(context.Context, json.RawMessage) (any, error){
		workflowFunction: func(ctx context.Context, payload json.RawMessage) (any, error) {
			var ev taskhandler.Event
			if err := json.Unmarshal(payload, &ev); err != nil {
				return nil, err
			}
			return handle(ctx, ev)
		},
	}))
	if err != nil {
		return r, err
	}

	machineARN := fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", opts.Region, opts.Account, stateMachineName)
	r.StepFns, err = localaws.StartStepFunctions(ctx, localaws.StepFunctionsOptions{
		StateMachines: []localaws.StateMachine{{
			ARN:            machineARN,
			DefinitionPath: filepath.Join(repo, "statemachine", "snapshot.asl.json"),
			Substitutions: map[string]string{
				"WorkflowFunctionArn": fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", opts.Region, opts.Account, workflowFunction),
			},
		}},
		LambdaEndpoint:   lambdaURL,
		WaitOverridesMs:  map[string]int{waitStateName: opts.WaitMs},
		RetryOverridesMs: opts.RetryOverridesMs,
		Stderr:           opts.Log,
	})
	if err != nil {
		return r, err
	}

	svc := &snapshot.Service{
		Store:     r.Store,
		Stacks:    stacks,
		Workflows: sfnworkflows.New(localaws.SFNClient(r.StepFns.Endpoint), machineARN),
		Limit:     opts.Limit,
		Now:       time.Now,
		NewID:     snapshot.NewID,
		LockGrace: opts.LockGrace,
		Log:       logger,
	}
	api := (&httpapi.API{Service: svc, Log: logger}).Handler(opts.Account)
	admin := r.adminHandler()
	// Not a ServeMux: it would clean paths and answer // or /./ with its
	// own redirects, where the API answers every path itself.
	front := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasPrefix(req.URL.Path, "/_local/") {
			admin.ServeHTTP(w, req)
			return
		}
		api.ServeHTTP(w, req)
	})
	if r.APIURL, err = r.serve(opts.APIAddr, front); err != nil {
		return r, err
	}
	return r, nil
}

func withDefaults(o Options) Options {
	if o.Account == "" {
		o.Account = "123456789012"
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.APIAddr == "" {
		o.APIAddr = "127.0.0.1:0"
	}
	if o.LockGrace == 0 {
		o.LockGrace = defaultLockGrace
	}
	if o.ArtefactDuration == 0 {
		o.ArtefactDuration = defaultArtefactDur
	}
	if o.WaitMs == 0 {
		o.WaitMs = defaultWaitMs
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}

// serve starts an HTTP server on addr and returns its base URL.
func (r *Runner) serve(addr string, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	r.servers = append(r.servers, srv)
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

// Stop stops every server and process the runner started.
func (r *Runner) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range r.servers {
		_ = srv.Shutdown(ctx)
	}
	if r.StepFns != nil {
		r.StepFns.Stop()
	}
	if r.dynalite != nil {
		r.dynalite.Stop()
	}
	if r.dataLock != nil {
		_ = r.dataLock.Close() // drops the flock
	}
}

// lockDir makes sure one runner at a time uses a data directory: two
// dynalites on one LevelDB directory crash.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("another stacksnap local runner is using %s: stop it first, or pass another -data", dir)
	}
	return f, nil
}

// SnapshotsURL is the URL of a stack's snapshots.
func (r *Runner) SnapshotsURL(s snapshot.Stack) string {
	return fmt.Sprintf("%s/v1/%s/stacks/%s/%s/snapshots", r.APIURL, r.Account, s.Name, s.ID)
}

// repoDir finds the repository's root: the directory holding go.mod.
func repoDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("localrun: no go.mod above " + wd + ": run from the stacksnap repository")
		}
	}
}
