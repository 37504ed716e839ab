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

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/stacksnap/stacksnap/internal/localrun"
	"github.com/stacksnap/stacksnap/internal/wiring"
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
	wait := flag.Duration("wait", 500*time.Millisecond, "wait between checks of an artefact (on AWS: half the time waited so far, 15s to 1h)")
	cloud := flag.String("cloud", "sim", "sim: the simulated cloud; aws: real CloudFormation, EC2, RDS and DynamoDB with the usual credential chain")
	flag.Parse()
	opts.WaitMs = int(wait.Milliseconds())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch *cloud {
	case "sim":
	case "aws":
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(opts.Region))
		if err != nil {
			fmt.Fprintln(os.Stderr, "stacksnap local: AWS configuration:", err)
			os.Exit(1)
		}
		accounts := wiring.Accounts(awsCfg, opts.Account, "")
		opts.Stacks, opts.Snapshotters = wiring.Stacks(accounts), wiring.Snapshotters(accounts, false)
	default:
		fmt.Fprintln(os.Stderr, "stacksnap local: -cloud must be sim or aws")
		os.Exit(2)
	}
	r, err := localrun.Start(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stacksnap local:", err)
		os.Exit(1)
	}
	fmt.Printf("stacksnap API: %s (caller account %s)\n", r.APIURL, opts.Account)
	for _, s := range r.Stacks {
		fmt.Printf("  %-40s %s\n", s.Name, r.SnapshotsURL(s))
	}
	if r.Cloud != nil {
		fmt.Printf("controls of the simulated cloud: %s/_local/stacks (see README.md)\n", r.APIURL)
	} else {
		fmt.Printf("real AWS in %s: snapshot a stack at %s/v1/%s/stacks/<name>/<id>/snapshots\n", opts.Region, r.APIURL, opts.Account)
	}
	fmt.Println("Ctrl-C stops everything.")
	<-ctx.Done()
	fmt.Println("stopping...")
	r.Stop()
}
