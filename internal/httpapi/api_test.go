package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// fakeService answers with what a test sets and records what it was asked.
type fakeService struct {
	snap  snapshot.Snapshot
	err   error
	name  *string
	opts  snapshot.ListOptions
	calls []string
}

func (f *fakeService) Create(_ context.Context, c snapshot.Caller, ref snapshot.StackRef, name *string) (snapshot.Snapshot, error) {
	f.calls = append(f.calls, "create "+c.AccountID+" "+ref.TenantID+"/"+ref.StackName+"/"+ref.StackID)
	f.name = name
	return f.snap, f.err
}

func (f *fakeService) Get(_ context.Context, _ snapshot.Caller, _ snapshot.StackRef, id string) (snapshot.Snapshot, error) {
	f.calls = append(f.calls, "get "+id)
	return f.snap, f.err
}

const stackID = "11111111-2222-3333-4444-555555555555"

func (f *fakeService) Lookup(_ context.Context, _ snapshot.Caller, _, name string) (snapshot.Stack, error) {
	f.calls = append(f.calls, "lookup "+name)
	return snapshot.Stack{Name: name, ID: stackID, Status: "UPDATE_COMPLETE"}, f.err
}

// ShowStack knows one stack id, as CloudFormation would.
func (f *fakeService) ShowStack(_ context.Context, _ snapshot.Caller, ref snapshot.StackRef) (snapshot.Stack, error) {
	if f.err != nil {
		return snapshot.Stack{}, f.err
	}
	if ref.StackID != stackID {
		return snapshot.Stack{}, snapshot.Errorf(snapshot.CodeStackNotFound, "The Stack (%s) could not be found.", ref.StackName)
	}
	return snapshot.Stack{Name: ref.StackName, ID: ref.StackID, Status: "UPDATE_COMPLETE"}, nil
}

func (f *fakeService) List(_ context.Context, _ snapshot.Caller, _ snapshot.StackRef, opts snapshot.ListOptions) ([]snapshot.Snapshot, error) {
	f.calls = append(f.calls, "list")
	f.opts = opts
	return []snapshot.Snapshot{f.snap}, f.err
}

const base = "/v1/123456789012/stacks/web/11111111-2222-3333-4444-555555555555/snapshots"

var inProgress = snapshot.Snapshot{
	Key:       snapshot.Key{TenantID: "123456789012", StackID: "11111111-2222-3333-4444-555555555555", SnapshotID: "019aa000-0000-7000-8000-000000000001"},
	Name:      ptr("s1"),
	Action:    snapshot.ActionCreate,
	Status:    snapshot.StatusInProgress,
	CreatedAt: time.Date(2026, 12, 3, 17, 4, 5, 0, time.UTC),
}

func ptr[T any](v T) *T { return &v }

func newAPI(svc Service) *API {
	return &API{Service: svc, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func serve(api *API, method, path, body string) Response {
	u, _ := url.Parse(path)
	return api.Serve(context.Background(), Request{Method: method, Path: u.Path, ClientURL: "https://api.example.com/api" + u.Path, Query: u.Query(), Body: []byte(body), Caller: snapshot.Caller{AccountID: "123456789012"}})
}

var requestIDPattern = regexp.MustCompile(`^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestCreateAnswersTheBareObject(t *testing.T) {
	svc := &fakeService{snap: inProgress}
	resp := serve(newAPI(svc), "POST", base, `{"name": "s1", "other": [1]}`)
	if resp.Status != 200 {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	want := `{"id":"019aa000-0000-7000-8000-000000000001","name":"s1","action":"CREATE","status":"IN_PROGRESS","status_reason":null,"data":null,"creation_time":"2026-12-03T17:04:05Z"}`
	if string(resp.Body) != want {
		t.Fatalf("body\n%s\nwant\n%s", resp.Body, want)
	}
	if resp.Headers["Content-Type"] != "application/json" || !requestIDPattern.MatchString(resp.Headers["X-Openstack-Request-Id"]) {
		t.Fatalf("headers %v", resp.Headers)
	}
	if *svc.name != "s1" || svc.calls[0] != "create 123456789012 123456789012/web/11111111-2222-3333-4444-555555555555" {
		t.Fatalf("service saw %v %v", svc.calls, *svc.name)
	}
}

func TestCreateNames(t *testing.T) {
	for _, tt := range []struct {
		body string
		want *string
	}{
		{`{}`, nil},
		{`{"name": null}`, nil},
		{` {"name": "ünïcode"} `, ptr("ünïcode")},
	} {
		svc := &fakeService{snap: inProgress}
		if resp := serve(newAPI(svc), "POST", base, tt.body); resp.Status != 200 {
			t.Fatalf("%s: status %d", tt.body, resp.Status)
		}
		if (svc.name == nil) != (tt.want == nil) || (tt.want != nil && *svc.name != *tt.want) {
			t.Fatalf("%s: name %v", tt.body, svc.name)
		}
	}
}

func TestShowAndList(t *testing.T) {
	complete := inProgress
	complete.Status = snapshot.StatusComplete
	complete.StatusReason = ptr(snapshot.ReasonComplete)
	complete.Data = &snapshot.StackData{Name: "web", Resources: map[string]snapshot.ResourceDump{}}
	svc := &fakeService{snap: complete}
	api := newAPI(svc)

	resp := serve(api, "GET", base+"/"+complete.SnapshotID, "")
	var shown struct{ Snapshot map[string]any }
	if err := json.Unmarshal(resp.Body, &shown); err != nil || resp.Status != 200 {
		t.Fatalf("%d %s", resp.Status, resp.Body)
	}
	if shown.Snapshot["status_reason"] != snapshot.ReasonComplete || shown.Snapshot["data"].(map[string]any)["name"] != "web" {
		t.Fatalf("shown %v", shown.Snapshot)
	}

	resp = serve(api, "GET", base+"?limit=5&marker=abc&status=COMPLETE&unknown=1", "")
	var listed struct{ Snapshots []map[string]any }
	if err := json.Unmarshal(resp.Body, &listed); err != nil || resp.Status != 200 || len(listed.Snapshots) != 1 {
		t.Fatalf("%d %s", resp.Status, resp.Body)
	}
	if svc.opts != (snapshot.ListOptions{Limit: 5, Marker: "abc", Status: snapshot.StatusComplete}) {
		t.Fatalf("options %+v", svc.opts)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		path     string
		body     string
		err      error
		status   int
		heatType string
		message  string
	}{
		{"ErrNoBody", "POST", base, "", nil, 400, "HTTPBadRequest", "The request body must be a JSON object."},
		{"ErrNotJSON", "POST", base, "name=s1", nil, 400, "HTTPBadRequest", "The request body is not valid JSON."},
		{"ErrTruncatedJSON", "POST", base, `{"name": "s1"`, nil, 400, "HTTPBadRequest", "The request body is not valid JSON."},
		{"ErrArray", "POST", base, `["s1"]`, nil, 400, "HTTPBadRequest", "The request body must be a JSON object."},
		{"ErrJSONNull", "POST", base, `null`, nil, 400, "HTTPBadRequest", "The request body must be a JSON object."},
		{"ErrNameNotString", "POST", base, `{"name": 7}`, nil, 400, "HTTPBadRequest", "The snapshot name must be a string or null."},
		{"ErrBadLimit", "GET", base + "?limit=0", "", nil, 400, "HTTPBadRequest", "limit must be a positive integer"},
		{"ErrStack", "GET", base, "", snapshot.Errorf(snapshot.CodeStackNotFound, "The Stack (web) could not be found."), 404, "EntityNotFound", "The Stack (web) could not be found."},
		{"ErrSnapshot", "GET", base + "/x", "", snapshot.Errorf(snapshot.CodeNotFound, "Snapshot with id x not found"), 404, "NotFound", "Snapshot with id x not found"},
		{"ErrOtherStack", "GET", base + "/x", "", snapshot.Errorf(snapshot.CodeSnapshotNotFound, "The Snapshot (x) for Stack (web) could not be found."), 404, "SnapshotNotFound", "The Snapshot (x) for Stack (web) could not be found."},
		{"ErrBusy", "POST", base, "{}", snapshot.Errorf(snapshot.CodeActionInProgress, "Stack web already has an action (UPDATE) in progress."), 409, "ActionInProgress", "Stack web already has an action (UPDATE) in progress."},
		{"ErrLimit", "POST", base, "{}", snapshot.Errorf(snapshot.CodeLimitExceeded, "Request limit exceeded: ..."), 400, "RequestLimitExceeded", "Request limit exceeded: ..."},
		{"ErrForbidden", "GET", base, "", snapshot.Errorf(snapshot.CodeForbidden, "Access was denied to this resource."), 403, "HTTPForbidden", "Access was denied to this resource."},
		{"ErrInternalHidesDetail", "GET", base, "", errors.New("dynamodb: table secret-table missing"), 500, "InternalError", "The server has either erred or is incapable of performing the requested operation."},
		{"ErrWrongMethodOnList", "PUT", base, "", nil, 405, "HTTPMethodNotAllowed", "The method is not allowed for this resource."},
		{"ErrWrongMethodOnSnapshot", "PATCH", base + "/x", "", nil, 405, "HTTPMethodNotAllowed", "The method is not allowed for this resource."},
		{"ErrGetRestore", "GET", base + "/x/restore", "", nil, 405, "HTTPMethodNotAllowed", "The method is not allowed for this resource."},
		{"ErrUnknownPath", "GET", "/v1/123456789012/stacks", "", nil, 404, "HTTPNotFound", "The resource could not be found."},
		{"ErrUnknownDeepPath", "GET", base + "/x/restore/more", "", nil, 404, "HTTPNotFound", "The resource could not be found."},
		{"ErrEmptySegment", "GET", "/v1/123456789012/stacks//id/snapshots", "", nil, 404, "HTTPNotFound", "The resource could not be found."},
		{"ErrTrailingSlash", "GET", base + "/", "", nil, 404, "HTTPNotFound", "The resource could not be found."},
		{"ErrTrailingDoubleSlash", "GET", "/v1/123456789012/stacks/web//", "", nil, 404, "HTTPNotFound", "The resource could not be found."},
		{"ErrOtherRoot", "GET", "/v2/x/stacks/a/b/snapshots", "", nil, 404, "HTTPNotFound", "The resource could not be found."},
		{"ErrByNameAloneGET", "GET", "/v1/123456789012/stacks/web/snapshots", "", nil, 404, "EntityNotFound", "The Stack (web) could not be found."},
		{"ErrByNameAlonePOST", "POST", "/v1/123456789012/stacks/web/snapshots", "{}", nil, 405, "HTTPMethodNotAllowed", "The method is not allowed for this resource."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &fakeService{snap: inProgress, err: tt.err}
			resp := serve(newAPI(svc), tt.method, tt.path, tt.body)
			var body heatError
			if err := json.Unmarshal(resp.Body, &body); err != nil {
				t.Fatalf("body %s: %v", resp.Body, err)
			}
			if resp.Status != tt.status || body.Code != tt.status || body.Error.Type != tt.heatType || body.Error.Message != tt.message {
				t.Fatalf("got %d %s", resp.Status, resp.Body)
			}
			if body.Title != statusTexts[tt.status][0] || body.Explanation != statusTexts[tt.status][1] || body.Error.Traceback != nil {
				t.Fatalf("title/explanation %s", resp.Body)
			}
			if !strings.Contains(string(resp.Body), `"traceback":null`) || resp.Headers["Content-Type"] != "application/json" || resp.Headers["X-Openstack-Request-Id"] == "" {
				t.Fatalf("headers %v body %s", resp.Headers, resp.Body)
			}
		})
	}
}

// TestStackLookup: Heat clients turn a stack name into name/id by asking
// GET /stacks/{name} without following the redirect, and reading Location.
func TestStackLookup(t *testing.T) {
	api := newAPI(&fakeService{})
	resp := serve(api, "GET", "/v1/123456789012/stacks/web", "")
	want := "https://api.example.com/api/v1/123456789012/stacks/web/" + stackID
	if resp.Status != 302 || resp.Headers["Location"] != want {
		t.Fatalf("%d %v", resp.Status, resp.Headers)
	}
	var body struct{ Stack stackJSON }
	if err := json.Unmarshal(resp.Body, &body); err != nil || body.Stack.ID != stackID || body.Stack.StackName != "web" {
		t.Fatalf("body %s", resp.Body)
	}
	// What the redirect leads to: the stack, as far as CloudFormation says.
	resp = serve(api, "GET", "/v1/123456789012/stacks/web/"+stackID, "")
	if err := json.Unmarshal(resp.Body, &body); err != nil || resp.Status != 200 || body.Stack.StackStatus != "UPDATE_COMPLETE" {
		t.Fatalf("%d %s", resp.Status, resp.Body)
	}
}

func TestAPIGatewayEvent(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/events/apigw-rest-proxy.iam-signed-heat-snapshot.derived.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	svc := &fakeService{snap: inProgress}
	resp, err := newAPI(svc).HandleAPIGateway(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || len(svc.calls) != 1 || !strings.HasPrefix(svc.calls[0], "create "+ev.RequestContext.Identity.AccountID+" ") {
		t.Fatalf("status %d, calls %v, body %s", resp.StatusCode, svc.calls, resp.Body)
	}
	if resp.Headers["X-Openstack-Request-Id"] == "" {
		t.Fatal("no request id")
	}
	t.Run("LookupAnswersAnAbsoluteURLUnderTheStage", func(t *testing.T) {
		ev := ev
		ev.HTTPMethod, ev.Path, ev.Body = "GET", "/v1/123456789012/stacks/web", ""
		ev.RequestContext.Path = "/api/v1/123456789012/stacks/web"
		resp, _ := newAPI(svc).HandleAPIGateway(context.Background(), ev)
		if want := "https://" + ev.Headers["Host"] + "/api/v1/123456789012/stacks/web/" + stackID; resp.StatusCode != 302 || resp.Headers["Location"] != want {
			t.Fatalf("%d Location %q, want %q", resp.StatusCode, resp.Headers["Location"], want)
		}
	})
	t.Run("LargeAnswersAreGzippedForClientsThatAcceptIt", func(t *testing.T) {
		big := inProgress
		big.Data = &snapshot.StackData{Template: map[string]any{"Description": strings.Repeat("x", 200<<10)}}
		ev := ev
		ev.HTTPMethod, ev.Path, ev.Body = "GET", base, ""
		ev.Headers = map[string]string{"Accept-Encoding": "gzip, deflate"}
		resp, err := newAPI(&fakeService{snap: big}).HandleAPIGateway(context.Background(), ev)
		if err != nil || !resp.IsBase64Encoded || resp.Headers["Content-Encoding"] != "gzip" {
			t.Fatalf("%v %v %v", err, resp.IsBase64Encoded, resp.Headers)
		}
		raw, _ := base64.StdEncoding.DecodeString(resp.Body)
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := io.ReadAll(zr)
		if len(raw) > len(plain)/10 || !bytes.Contains(plain, []byte(`"snapshots":[`)) {
			t.Fatalf("%d bytes gzipped from %d", len(raw), len(plain))
		}
		ev.Headers = nil
		if resp, _ := newAPI(&fakeService{snap: big}).HandleAPIGateway(context.Background(), ev); resp.IsBase64Encoded {
			t.Fatal("gzipped for a client that did not ask")
		}
	})
	t.Run("Base64Body", func(t *testing.T) {
		ev.Body, ev.IsBase64Encoded = "eyJuYW1lIjogImI2NCJ9", true // {"name": "b64"}
		if _, err := newAPI(svc).HandleAPIGateway(context.Background(), ev); err != nil || *svc.name != "b64" {
			t.Fatalf("name %v err %v", svc.name, err)
		}
	})
}

func TestNetHTTPHandler(t *testing.T) {
	svc := &fakeService{snap: inProgress}
	h := newAPI(svc).Handler("123456789012")
	req, _ := http.NewRequest("POST", base, strings.NewReader(`{"name":"s1"}`))
	req.Header.Set("X-Stacksnap-Caller-Account", "210987654321")
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, req)
	if rec.status != 200 || !strings.HasPrefix(svc.calls[0], "create 210987654321 ") || rec.header.Get("X-Openstack-Request-Id") == "" {
		t.Fatalf("status %d calls %v", rec.status, svc.calls)
	}
}

func TestNetHTTPBodyTooLarge(t *testing.T) {
	svc := &fakeService{snap: inProgress}
	req, _ := http.NewRequest("POST", base, strings.NewReader(`{"name": "`+strings.Repeat("x", maxBody)+`"}`))
	rec := &recorder{header: http.Header{}}
	newAPI(svc).Handler("123456789012").ServeHTTP(rec, req)
	var body heatError
	if err := json.Unmarshal([]byte(rec.body.String()), &body); err != nil || rec.status != 413 || body.Error.Type != "HTTPRequestEntityTooLarge" || len(svc.calls) != 0 {
		t.Fatalf("%d %s %v", rec.status, rec.body.String(), svc.calls)
	}
	if rec.header.Get("X-Openstack-Request-Id") == "" || rec.header.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", rec.header)
	}
}

type recorder struct {
	header http.Header
	status int
	body   strings.Builder
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(s int)           { r.status = s }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

func TestAllowHeader(t *testing.T) {
	api := newAPI(&fakeService{snap: inProgress})
	for path, allow := range map[string]string{
		base:                                     "GET, POST",
		base + "/x":                              "GET",
		base + "/x/restore":                      "",
		"/v1/123456789012/stacks/web":            "GET",
		"/v1/123456789012/stacks/web/" + stackID: "GET",
	} {
		resp := serve(api, "PATCH", path, "")
		if got, ok := resp.Headers["Allow"]; resp.Status != 405 || !ok || got != allow {
			t.Errorf("PATCH %s: %d Allow %q, want %q", path, resp.Status, got, allow)
		}
	}
}

func TestPathSegmentsAreUnescaped(t *testing.T) {
	svc := &fakeService{snap: inProgress}
	api := newAPI(svc)
	resp := api.Serve(context.Background(), Request{Method: "POST", Path: "/v1/123456789012/stacks/web%2Fx/" + stackID + "/snapshots", Body: []byte("{}"), Caller: snapshot.Caller{AccountID: "123456789012"}})
	if resp.Status != 200 || svc.calls[0] != "create 123456789012 123456789012/web/x/"+stackID {
		t.Fatalf("%d %v: an encoded slash stays inside the stack name", resp.Status, svc.calls)
	}
	resp = api.Serve(context.Background(), Request{Method: "GET", Path: "/v1/123456789012/stacks/web%ZZ/" + stackID + "/snapshots"})
	if resp.Status != 404 {
		t.Fatalf("a bad escape: %d %s", resp.Status, resp.Body)
	}
}
