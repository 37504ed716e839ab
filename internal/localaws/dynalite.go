// Package localaws starts local stand-ins for AWS services (dynalite for
// DynamoDB) and makes SDK clients that talk to them. Tests and the local
// runner use it; the Lambda functions never do.
package localaws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// NodeModulesDir returns <repo>/node/node_modules, where the pinned Node
// tools live. The repository root is the nearest directory at or above the
// working directory that holds go.mod (tests run in their package's dir).
func NodeModulesDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("localaws: no go.mod at or above the working directory, so the repository root is unknown")
		}
		dir = parent
	}
	modules := filepath.Join(dir, "node", "node_modules")
	if _, err := os.Stat(modules); err != nil {
		return "", fmt.Errorf("localaws: the Node tools are not installed (%s is missing): run `make test` or `cd node && npm ci`", modules)
	}
	return modules, nil
}

// DynaliteOptions configures StartDynalite.
type DynaliteOptions struct {
	Path   string    // LevelDB directory to persist tables in; "" keeps them in memory
	Port   int       // 0 picks a free loopback port
	Stderr io.Writer // also receives dynalite's stderr; nil discards it
}

// Dynalite is a running dynalite server.
type Dynalite struct {
	Endpoint string // http://127.0.0.1:PORT

	proc *child
}

const (
	dynaliteReadyTimeout = 10 * time.Second
	// A port we picked can be taken by someone else before dynalite binds
	// it; then dynalite exits at once and we try another.
	dynalitePortAttempts = 3
)

// StartDynalite runs dynalite as a child process and returns once it answers
// ListTables. ctx bounds the start only; call Stop to end the process.
func StartDynalite(ctx context.Context, opts DynaliteOptions) (*Dynalite, error) {
	modules, err := NodeModulesDir()
	if err != nil {
		return nil, err
	}
	cli := filepath.Join(modules, "dynalite", "cli.js")
	if _, err := os.Stat(cli); err != nil {
		return nil, fmt.Errorf("localaws: dynalite is not installed (%s is missing): run `make test` or `cd node && npm ci`", cli)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("localaws: node is not on PATH: %w", err)
	}

	attempts := 1
	if opts.Port == 0 {
		attempts = dynalitePortAttempts
	}
	for attempt := 1; ; attempt++ {
		port := opts.Port
		if port == 0 {
			if port, err = freeLoopbackPort(); err != nil {
				return nil, err
			}
		}
		d, err := startDynaliteOnPort(ctx, node, cli, port, opts)
		if err == nil || attempt == attempts || !errors.Is(err, errExitedEarly) {
			return d, err
		}
	}
}

var errExitedEarly = errors.New("dynalite exited before it was ready")

func startDynaliteOnPort(ctx context.Context, node, cli string, port int, opts DynaliteOptions) (*Dynalite, error) {
	args := []string{cli, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--createTableMs", "0", "--deleteTableMs", "0"}
	if opts.Path != "" {
		args = append(args, "--path", opts.Path)
	}
	cmd := exec.Command(node, args...)
	listening := &lineWatch{want: []byte("Dynalite listening"), seen: make(chan struct{})}
	cmd.Stdout = listening
	d := &Dynalite{
		Endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		proc:     newChild("dynalite", cmd, opts.Stderr, 0), // no grace: Stop kills at once
	}
	if err := d.proc.start(nil); err != nil {
		return nil, err
	}
	if err := d.waitReady(ctx, listening.seen); err != nil {
		return nil, d.proc.abort(fmt.Sprintf("dynalite on port %d", port), err)
	}
	return d, nil
}

// waitReady waits until dynalite says it listens and then answers
// ListTables, or exits, or time is up. Until it says so, whatever answers
// on the port may be another server that took the port first.
func (d *Dynalite) waitReady(ctx context.Context, listening <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, dynaliteReadyTimeout)
	defer cancel()
	select {
	case <-listening:
	case <-d.proc.Exited():
		return errExitedEarly
	case <-ctx.Done():
		return fmt.Errorf("not listening after %s", dynaliteReadyTimeout)
	}
	client := DynamoDBClient(d.Endpoint)
	for {
		_, err := client.ListTables(ctx, &dynamodb.ListTablesInput{},
			func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
		if err == nil {
			return nil
		}
		select {
		case <-d.proc.Exited():
			return errExitedEarly
		case <-ctx.Done():
			return fmt.Errorf("not answering after %s (last error: %v)", dynaliteReadyTimeout, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop kills dynalite and its process group, and waits for it to exit. It
// is safe to call more than once.
func (d *Dynalite) Stop() { d.proc.Stop() }

// freeLoopbackPort asks the kernel for a free port. dynalite cannot do it
// itself: its CLI turns --port 0 into its default, 4567.
func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("localaws: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// DynamoDBClient returns a DynamoDB client for a local endpoint, with dummy
// static credentials (dynalite checks none).
func DynamoDBClient(endpoint string) *dynamodb.Client {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("dummy", "dummy", ""),
	}
	// The SDK keeps 10 idle connections per host, made for many AWS hosts;
	// tests and the local runner send many concurrent calls to one host.
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConnsPerHost = 100
	})
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.HTTPClient = httpClient
	})
}

// lineWatch closes seen once the output written to it contains want. The
// exec package writes to it from one goroutine.
type lineWatch struct {
	want []byte
	seen chan struct{}
	tail []byte // the end of the output so far, shorter than want
	done bool
}

func (w *lineWatch) Write(p []byte) (int, error) {
	if w.done {
		return len(p), nil
	}
	out := append(w.tail, p...)
	if bytes.Contains(out, w.want) {
		w.done, w.tail = true, nil
		close(w.seen)
		return len(p), nil
	}
	w.tail = append(w.tail[:0], out[max(0, len(out)-len(w.want)+1):]...)
	return len(p), nil
}
