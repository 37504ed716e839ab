package snapshot

import (
	"errors"
	"fmt"
)

// Code names a kind of failure. The HTTP adapter maps each code to a status
// and a Heat error type; the domain never speaks HTTP.
type Code string

const (
	CodeBadRequest       Code = "bad_request"        // 400 HTTPBadRequest
	CodeForbidden        Code = "forbidden"          // 403 HTTPForbidden
	CodeStackNotFound    Code = "stack_not_found"    // 404 EntityNotFound
	CodeNotFound         Code = "not_found"          // 404 NotFound
	CodeSnapshotNotFound Code = "snapshot_not_found" // 404 SnapshotNotFound
	CodeActionInProgress Code = "action_in_progress" // 409 ActionInProgress
	CodeLimitExceeded    Code = "limit_exceeded"     // 400 RequestLimitExceeded
	CodeNotSupported     Code = "not_supported"      // 400 NotSupported
	CodeConflict         Code = "conflict"           // a failed write condition; internal unless mapped
	CodeInternal         Code = "internal"           // 500, message never shown
)

// Error is the one application error: a code and a message that is safe to
// show to the caller.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with a formatted, caller-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, or CodeInternal for anything that is
// not an *Error.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the caller-safe message of err; internal errors
// have none.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != CodeInternal {
		return e.Message
	}
	return ""
}

// The errors of the wire contract, with Heat's exact messages.

func errStackNotFound(name string) *Error {
	return Errorf(CodeStackNotFound, "The Stack (%s) could not be found.", name)
}

func errSnapshotNotFound(id string) *Error {
	return Errorf(CodeNotFound, "Snapshot with id %s not found", id)
}

func errSnapshotOfOtherStack(id, stackName string) *Error {
	return Errorf(CodeSnapshotNotFound, "The Snapshot (%s) for Stack (%s) could not be found.", id, stackName)
}

func errActionInProgress(stackName, action string) *Error {
	return Errorf(CodeActionInProgress, "Stack %s already has an action (%s) in progress.", stackName, action)
}

func errLimitExceeded(limit int) *Error {
	return Errorf(CodeLimitExceeded, "Request limit exceeded: You have reached the maximum snapshots per stack, %d. Please delete some snapshots.", limit)
}

// ErrStoreNotFound is returned by a Store when a record does not exist.
var ErrStoreNotFound = errors.New("record not found")

// ErrStoreConflict is returned by a Store when a write's condition failed.
var ErrStoreConflict = errors.New("write condition failed")
