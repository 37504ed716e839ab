package snapshot

import (
	"strings"
	"time"
)

// Stack is a CloudFormation stack as the stack lookup reports it.
type Stack struct {
	Name   string
	ID     string // the UUID that ends the StackId ARN
	ARN    string
	Status string // CloudFormation StackStatus, e.g. CREATE_COMPLETE
	// UpdatedAt is when the stack was last updated (its creation if never).
	UpdatedAt time.Time
}

// Resource is one resource of a stack. LogicalID is qualified by the parent
// stack's logical id for resources of nested stacks ("Network.Subnet").
type Resource struct {
	LogicalID  string
	PhysicalID string
	Type       string
}

// Definition is what the stack was made from: its template source (JSON or
// YAML), its parameter values (NoEcho ones masked as CloudFormation returns
// them) and its tags.
type Definition struct {
	TemplateBody string
	Parameters   map[string]string
	Tags         map[string]string
}

// StackIDFromARN returns the UUID that ends a stack ARN
// (arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/UUID), or "".
func StackIDFromARN(arn string) string {
	_, rest, ok := strings.Cut(arn, ":stack/")
	if !ok {
		return ""
	}
	_, id, _ := strings.Cut(rest, "/")
	return id
}

// busyAction returns the Heat action word of a CloudFormation status that
// is in progress, and false when the stack is at rest.
func busyAction(status string) (string, bool) {
	if !strings.HasSuffix(status, "_IN_PROGRESS") {
		return "", false
	}
	action := strings.TrimSuffix(status, "_IN_PROGRESS")
	// UPDATE_COMPLETE_CLEANUP, UPDATE_ROLLBACK_COMPLETE_CLEANUP: still the update.
	action = strings.TrimSuffix(action, "_COMPLETE_CLEANUP")
	return action, true
}

// deleted reports whether CloudFormation has finished deleting the stack.
func deleted(status string) bool { return status == "DELETE_COMPLETE" }
