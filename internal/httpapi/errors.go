package httpapi

import (
	"errors"
	"net/http"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// heatError is the error body Heat answers with.
type heatError struct {
	Code        int         `json:"code"`
	Title       string      `json:"title"`
	Explanation string      `json:"explanation"`
	Error       heatErrInfo `json:"error"`
}

type heatErrInfo struct {
	Type      string  `json:"type"`
	Message   string  `json:"message"`
	Traceback *string `json:"traceback"`
}

// errorKinds maps each domain code to its HTTP status and Heat error type.
var errorKinds = map[snapshot.Code]struct {
	status   int
	heatType string
}{
	snapshot.CodeBadRequest:       {http.StatusBadRequest, "HTTPBadRequest"},
	snapshot.CodeForbidden:        {http.StatusForbidden, "HTTPForbidden"},
	snapshot.CodeStackNotFound:    {http.StatusNotFound, "EntityNotFound"},
	snapshot.CodeNotFound:         {http.StatusNotFound, "NotFound"},
	snapshot.CodeSnapshotNotFound: {http.StatusNotFound, "SnapshotNotFound"},
	snapshot.CodeActionInProgress: {http.StatusConflict, "ActionInProgress"},
	snapshot.CodeLimitExceeded:    {http.StatusBadRequest, "RequestLimitExceeded"},
	snapshot.CodeNotSupported:     {http.StatusBadRequest, "NotSupported"},
}

// The standard titles and explanations of the statuses we answer.
var statusTexts = map[int][2]string{
	http.StatusBadRequest:          {"Bad Request", "The server could not comply with the request since it is either malformed or otherwise incorrect."},
	http.StatusForbidden:           {"Forbidden", "Access was denied to this resource."},
	http.StatusNotFound:            {"Not Found", "The resource could not be found."},
	http.StatusMethodNotAllowed:    {"Method Not Allowed", "The method is not allowed for this resource."},
	http.StatusConflict:            {"Conflict", "There was a conflict when trying to complete your request."},
	http.StatusInternalServerError: {"Internal Server Error", "The server has either erred or is incapable of performing the requested operation."},
}

func newHeatError(status int, heatType, message string) heatError {
	texts := statusTexts[status]
	if message == "" {
		message = texts[1]
	}
	return heatError{
		Code:        status,
		Title:       texts[0],
		Explanation: texts[1],
		Error:       heatErrInfo{Type: heatType, Message: message},
	}
}

// errorFor maps a domain error to the Heat error answered for it; anything
// without a mapping is an internal error whose text is not shown.
func errorFor(err error) heatError {
	var re *routeError
	if errors.As(err, &re) {
		return newHeatError(re.status, re.heatType, "")
	}
	kind, ok := errorKinds[snapshot.ErrorCode(err)]
	if !ok {
		return newHeatError(http.StatusInternalServerError, "InternalError", "")
	}
	return newHeatError(kind.status, kind.heatType, snapshot.ErrorMessage(err))
}
