package cfnstacks_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/cloudformation"

	"github.com/stacksnap/stacksnap/internal/awstest"
	"github.com/stacksnap/stacksnap/internal/cfnstacks"
)

// operations collects "service:Action" of every request the stubbed
// transports answered during the tests.
var operations awstest.Recorder

// TestMain checks, once every test has run, that cfnstacks.Operations
// names exactly the operations the tests saw the code call, so that the
// list given to IAM cannot drift from the code.
func TestMain(m *testing.M) {
	awstest.Main(m, func() error { return operations.Check("cfnstacks.Operations", cfnstacks.Operations) })
}

// The tests call the code through the real client.
var _ cfnstacks.API = (*cloudformation.Client)(nil)
