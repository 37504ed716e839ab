// Package awstest is test support for the packages that call AWS
// (awsaccounts, cfnstacks, awssnap): a Recorder of the operations their
// stubbed endpoints answered, checked against the package's exported list
// of IAM actions once the whole suite has run (Main, WholeSuite), and the
// parts of a stub HTTP transport that every stub builds the same way.
//
// Only _test.go files import it; no production code may.
package awstest

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Recorder collects the operations, "service:Action", that stubbed AWS
// endpoints were asked for. The zero value is ready to use, and it is safe
// for concurrent use.
type Recorder struct {
	mu   sync.Mutex
	seen map[string]bool
}

// Record notes that a stub was asked for op, e.g. "sts:AssumeRole".
func (r *Recorder) Record(op string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	r.seen[op] = true
}

// Seen returns the recorded operations, sorted.
func (r *Recorder) Seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var seen []string
	for op := range r.seen {
		seen = append(seen, op)
	}
	slices.Sort(seen)
	return seen
}

// Unseen returns the operations of listed that were never recorded, in the
// order of listed.
func (r *Recorder) Unseen(listed []string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var unseen []string
	for _, op := range listed {
		if !r.seen[op] {
			unseen = append(unseen, op)
		}
	}
	return unseen
}

// Check returns an error unless listed, the exported list called name (for
// the message), names exactly the recorded operations, each once.
func (r *Recorder) Check(name string, listed []string) error {
	seen := r.Seen()
	want := slices.Sorted(slices.Values(listed))
	if !slices.Equal(seen, want) {
		return fmt.Errorf("%s = %v, but the tests saw %v", name, want, seen)
	}
	return nil
}

// WholeSuite reports whether no -run or -skip filter left tests out, which
// would leave operations unrecorded. It reads the test flags, so call it
// after m.Run has parsed them.
func WholeSuite() bool {
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return true
}

// Main is the body of a TestMain that checks operations: it runs the tests
// and, if they all passed and WholeSuite, check, which fails the run by
// returning an error. It exits with the run's status.
func Main(m *testing.M, check func() error) {
	code := m.Run()
	if code == 0 && WholeSuite() {
		if err := check(); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL: TestMain:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// QueryForm reads the form an AWS Query request (STS, CloudFormation, EC2,
// RDS) carries in its body, Action included.
func QueryForm(req *http.Request) (url.Values, error) {
	raw, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	return url.ParseQuery(string(raw))
}

// Response is a stub's reply to req.
func Response(req *http.Request, status int, contentType, body string) *http.Response {
	return &http.Response{
		StatusCode: status,
		Header:     http.Header{"Content-Type": {contentType}},
		Body:       io.NopCloser(strings.NewReader(body)),
		Request:    req,
	}
}
