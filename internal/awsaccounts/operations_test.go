package awsaccounts_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/stacksnap/stacksnap/internal/awsaccounts"
	"github.com/stacksnap/stacksnap/internal/awstest"
)

// operations collects "service:Action" of every request the stubbed
// transports answered during the tests.
var operations awstest.Recorder

// TestMain checks, once every test has run, that awsaccounts.Operations
// names exactly the operations the tests saw the code call, so that the
// list given to IAM cannot drift from the code.
func TestMain(m *testing.M) {
	awstest.Main(m, func() error { return operations.Check("awsaccounts.Operations", awsaccounts.Operations) })
}

// The stub is a real STS endpoint as far as the client knows.
var _ awsaccounts.STSAPI = (*sts.Client)(nil)
