// Package httpapi is the HTTP adapter of the snapshot API: routing, the
// Heat wire formats and errors. It is served by API Gateway (Lambda proxy
// events) on AWS and by net/http in the local runner.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// Service is what the API needs of the domain.
type Service interface {
	Create(ctx context.Context, caller snapshot.Caller, ref snapshot.StackRef, name *string) (snapshot.Snapshot, error)
	Get(ctx context.Context, caller snapshot.Caller, ref snapshot.StackRef, snapshotID string) (snapshot.Snapshot, error)
	List(ctx context.Context, caller snapshot.Caller, ref snapshot.StackRef, opts snapshot.ListOptions) ([]snapshot.Snapshot, error)
	Lookup(ctx context.Context, caller snapshot.Caller, tenantID, name string) (snapshot.Stack, error)
	ShowStack(ctx context.Context, caller snapshot.Caller, ref snapshot.StackRef) (snapshot.Stack, error)
}

// Request is an HTTP request as both front doors deliver it.
type Request struct {
	Method string
	// Path is the path of the API's route, escaped as the client sent it:
	// an encoded slash stays inside its segment.
	Path string
	// ClientURL is the URL as the client sent it (on API Gateway, with the
	// stage), without the query: the API answers with URLs under it, and
	// Heat clients accept only URLs under the endpoint they were given.
	ClientURL string
	Query     url.Values
	Body      []byte
	Caller    snapshot.Caller
}

// Response is what the API answers.
type Response struct {
	Status  int
	Headers map[string]string
	Body    []byte
}

// API routes requests to the service and writes Heat's formats.
type API struct {
	Service Service
	Log     *slog.Logger
}

// Serve answers one request. It never fails: every error becomes a Heat
// error response.
func (a *API) Serve(ctx context.Context, req Request) Response {
	requestID := "req-" + uuid.NewString()
	status, body, location, err := a.route(ctx, req)
	if err != nil {
		he := errorFor(err)
		if he.Code == http.StatusInternalServerError {
			a.Log.ErrorContext(ctx, "request failed", "request_id", requestID, "method", req.Method, "path", req.Path, "error", err)
		}
		status, body = he.Code, he
	}
	resp := Response{Status: status, Headers: map[string]string{"X-Openstack-Request-Id": requestID}}
	if location != "" {
		resp.Headers["Location"] = location
	}
	var notAllowed *routeError
	if errors.As(err, &notAllowed) && notAllowed.status == http.StatusMethodNotAllowed {
		resp.Headers["Allow"] = notAllowed.allow
	}
	if status == http.StatusNoContent {
		return resp
	}
	resp.Headers["Content-Type"] = "application/json"
	resp.Body, _ = json.Marshal(body) // our own types: cannot fail
	return resp
}

// route finds the handler of a request: the status, body and Location of
// a success, or the error to answer.
func (a *API) route(ctx context.Context, req Request) (int, any, string, error) {
	// Every segment counts: an empty one (a doubled or trailing slash)
	// is no path of ours.
	parts := strings.Split(strings.TrimPrefix(req.Path, "/"), "/")
	for i, p := range parts {
		segment, err := url.PathUnescape(p)
		if err != nil || segment == "" {
			return 0, nil, "", errNotFound
		}
		parts[i] = segment
	}
	// /v1/{tenant_id}/stacks/{stack_name}[/{stack_id}[/snapshots[/{snapshot_id}[/restore]]]]
	if len(parts) < 4 || parts[0] != "v1" || parts[2] != "stacks" {
		return 0, nil, "", errNotFound
	}
	if len(parts) == 4 {
		if req.Method != http.MethodGet {
			return 0, nil, "", methodNotAllowed("GET")
		}
		return a.lookup(ctx, req, parts[1], parts[3])
	}
	ref := snapshot.StackRef{TenantID: parts[1], StackName: parts[3], StackID: parts[4]}
	rest := parts[5:]
	var status int
	var body any
	var err error
	switch {
	case len(rest) == 0 && req.Method == http.MethodGet:
		// By name alone, /stacks/{name}/snapshots reads as the stack
		// whose id is "snapshots": there is none.
		status, body, err = a.showStack(ctx, req, ref)
	case len(rest) == 0:
		err = methodNotAllowed("GET")
	case rest[0] != "snapshots":
		err = errNotFound
	case len(rest) == 1 && req.Method == http.MethodPost:
		status, body, err = a.create(ctx, req, ref)
	case len(rest) == 1 && req.Method == http.MethodGet:
		status, body, err = a.list(ctx, req, ref)
	case len(rest) == 2 && req.Method == http.MethodGet:
		status, body, err = a.show(ctx, req, ref, rest[1])
	case len(rest) == 1:
		err = methodNotAllowed("GET, POST")
	case len(rest) == 2:
		err = methodNotAllowed("GET")
	case len(rest) == 3 && rest[2] == "restore":
		err = methodNotAllowed("") // restore is not built yet
	default:
		err = errNotFound
	}
	return status, body, "", err
}

// lookup answers Heat's stack lookup, which Heat clients use to turn a
// stack's name into its name/id: a redirect to the stack's URL.
func (a *API) lookup(ctx context.Context, req Request, tenantID, name string) (int, any, string, error) {
	stack, err := a.Service.Lookup(ctx, req.Caller, tenantID, name)
	if err != nil {
		return 0, nil, "", err
	}
	location := strings.TrimSuffix(req.ClientURL, "/") + "/" + url.PathEscape(stack.ID)
	return http.StatusFound, map[string]any{"stack": wireStack(stack, location)}, location, nil
}

func (a *API) showStack(ctx context.Context, req Request, ref snapshot.StackRef) (int, any, error) {
	stack, err := a.Service.ShowStack(ctx, req.Caller, ref)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"stack": wireStack(stack, req.ClientURL)}, nil
}

var errNotFound = &routeError{status: http.StatusNotFound, heatType: "HTTPNotFound"}

// methodNotAllowed is the 405 of a path that answers the allowed methods.
func methodNotAllowed(allow string) *routeError {
	return &routeError{status: http.StatusMethodNotAllowed, heatType: "HTTPMethodNotAllowed", allow: allow}
}

// routeError is an error of the HTTP layer itself, not of the domain.
type routeError struct {
	status   int
	heatType string
	allow    string // the Allow header of a 405
}

func (e *routeError) Error() string { return e.heatType }

func (a *API) create(ctx context.Context, req Request, ref snapshot.StackRef) (int, any, error) {
	name, err := snapshotName(req.Body)
	if err != nil {
		return 0, nil, err
	}
	snap, err := a.Service.Create(ctx, req.Caller, ref, name)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, wireSnapshot(snap), nil
}

func (a *API) list(ctx context.Context, req Request, ref snapshot.StackRef) (int, any, error) {
	opts, err := listOptions(req.Query)
	if err != nil {
		return 0, nil, err
	}
	snaps, err := a.Service.List(ctx, req.Caller, ref, opts)
	if err != nil {
		return 0, nil, err
	}
	out := make([]snapshotJSON, len(snaps))
	for i, s := range snaps {
		out[i] = wireSnapshot(s)
	}
	return http.StatusOK, map[string]any{"snapshots": out}, nil
}

func (a *API) show(ctx context.Context, req Request, ref snapshot.StackRef, id string) (int, any, error) {
	snap, err := a.Service.Get(ctx, req.Caller, ref, id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"snapshot": wireSnapshot(snap)}, nil
}

// snapshotName reads the POST body: a JSON object whose "name" is a
// string or null; other keys are ignored.
func snapshotName(body []byte) (*string, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, snapshot.Errorf(snapshot.CodeBadRequest, "The request body must be a JSON object.")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) || !json.Valid(body) {
			return nil, snapshot.Errorf(snapshot.CodeBadRequest, "The request body is not valid JSON.")
		}
		return nil, snapshot.Errorf(snapshot.CodeBadRequest, "The request body must be a JSON object.")
	}
	raw, ok := fields["name"]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var name string
	if err := json.Unmarshal(raw, &name); err != nil {
		return nil, snapshot.Errorf(snapshot.CodeBadRequest, "The snapshot name must be a string or null.")
	}
	return &name, nil
}

func listOptions(q url.Values) (snapshot.ListOptions, error) {
	opts := snapshot.ListOptions{Marker: q.Get("marker"), Status: snapshot.Status(q.Get("status"))}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return opts, snapshot.Errorf(snapshot.CodeBadRequest, "limit must be a positive integer")
		}
		opts.Limit = n
	}
	return opts, nil
}

// stackJSON is the part of Heat's stack object that CloudFormation's
// stack fills.
type stackJSON struct {
	ID          string     `json:"id"`
	StackName   string     `json:"stack_name"`
	StackStatus string     `json:"stack_status"`
	Links       []linkJSON `json:"links"`
}

type linkJSON struct {
	Href string `json:"href"`
	Rel  string `json:"rel"`
}

func wireStack(s snapshot.Stack, self string) stackJSON {
	return stackJSON{ID: s.ID, StackName: s.Name, StackStatus: s.Status, Links: []linkJSON{{Href: self, Rel: "self"}}}
}

// snapshotJSON is Heat's snapshot object.
type snapshotJSON struct {
	ID           string              `json:"id"`
	Name         *string             `json:"name"`
	Action       snapshot.Action     `json:"action"`
	Status       snapshot.Status     `json:"status"`
	StatusReason *string             `json:"status_reason"`
	Data         *snapshot.StackData `json:"data"`
	CreationTime string              `json:"creation_time"`
}

func wireSnapshot(s snapshot.Snapshot) snapshotJSON {
	return snapshotJSON{
		ID:           s.SnapshotID,
		Name:         s.Name,
		Action:       s.Action,
		Status:       s.Status,
		StatusReason: s.StatusReason,
		Data:         s.Data,
		CreationTime: s.CreatedAt.UTC().Format(time.RFC3339),
	}
}
