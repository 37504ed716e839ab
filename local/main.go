// Command local runs stacksnap on this machine with no AWS account: see
// `make local` and README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/stacksnap/stacksnap/internal/localrun"
)

func main() {
	opts := localrun.Options{Log: os.Stderr}
	flag.StringVar(&opts.APIAddr, "addr", "127.0.0.1:8004", "where the API listens")
	flag.StringVar(&opts.Account, "account", "123456789012", "the caller's AWS account: the tenant that owns the local stacks")
	flag.StringVar(&opts.Region, "region", "us-east-1", "the region of the local stacks")
	flag.StringVar(&opts.DataDir, "data", ".local", "where records and the simulated cloud are kept across restarts; empty: in memory")
	flag.StringVar(&opts.StacksDir, "stacks", "local/stacks", "CloudFormation templates (JSON or YAML) loaded as stacks")
	flag.IntVar(&opts.Limit, "limit", 32, "max_snapshots_per_stack (-1: no limit, 0: none)")
	flag.DurationVar(&opts.ArtefactDuration, "artefact-duration", 3*time.Second, "how long a simulated artefact takes")
	wait := flag.Duration("wait", 500*time.Millisecond, "wait between checks of an artefact (on AWS it grows from 15s to 5m)")
	flag.Parse()
	opts.WaitMs = int(wait.Milliseconds())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := localrun.Start(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stacksnap local:", err)
		os.Exit(1)
	}
	fmt.Printf("stacksnap API: %s (caller account %s)\n", r.APIURL, opts.Account)
	for _, s := range r.Stacks {
		fmt.Printf("  %-40s %s\n", s.Name, r.SnapshotsURL(s))
	}
	fmt.Printf("controls of the simulated cloud: %s/_local/stacks (see README.md)\n", r.APIURL)
	fmt.Println("Ctrl-C stops everything.")
	<-ctx.Done()
	fmt.Println("stopping...")
	r.Stop()
}
