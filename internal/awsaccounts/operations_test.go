package awsaccounts_test

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/stacksnap/stacksnap/internal/awsaccounts"
)

// seenOperations collects "service:Action" of every request the stubbed
// transports answered during the tests.
var seenOperations sync.Map

func recordOperation(op string) { seenOperations.Store(op, true) }

// TestMain checks, once every test has run, that awsaccounts.Operations
// names exactly the operations the tests saw the code call, so that the
// list given to IAM cannot drift from the code.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 && wholeSuite() {
		if err := checkOperations(awsaccounts.Operations); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL: TestMain:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// wholeSuite reports whether no -run or -skip filter left tests out, which
// would leave operations unseen.
func wholeSuite() bool {
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return true
}

func checkOperations(listed []string) error {
	var seen []string
	seenOperations.Range(func(op, _ any) bool {
		seen = append(seen, op.(string))
		return true
	})
	slices.Sort(seen)
	want := slices.Sorted(slices.Values(listed))
	if !slices.Equal(seen, want) {
		return fmt.Errorf("Operations = %v, but the tests saw %v", want, seen)
	}
	return nil
}

// The stub is a real STS endpoint as far as the client knows.
var _ awsaccounts.STSAPI = (*sts.Client)(nil)
