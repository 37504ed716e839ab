package localaws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda/messages"
)

type lambdaTestError struct{ msg string }

func (e *lambdaTestError) Error() string { return e.msg }

type lambdaValueError struct{}

func (lambdaValueError) Error() string { return "by value" }

func TestLambdaInvokeHandler(t *testing.T) {
	fail := func(err error) func(context.Context, json.RawMessage) (any, error) {
		return func(context.Context, json.RawMessage) (any, error) { return nil, err }
	}
	functions := map[string]func(ctx context.Context, payload json.RawMessage) (any, error){
		"echo": func(_ context.Context, payload json.RawMessage) (any, error) {
			var in map[string]any
			if err := json.Unmarshal(payload, &in); err != nil {
				return nil, err
			}
			return map[string]any{"got": in}, nil
		},
		"pointer":     fail(&lambdaTestError{"pointer error"}),
		"value":       fail(lambdaValueError{}),
		"new":         fail(errors.New("plain")),
		"errorf":      fail(fmt.Errorf("no wrap %d", 1)),
		"wrapf":       fail(fmt.Errorf("wrapped: %w", &lambdaTestError{"inner"})),
		"invokeError": fail(messages.InvokeResponse_Error{Type: "Custom", Message: "as is"}),
		"panicString": func(context.Context, json.RawMessage) (any, error) { panic("boom") },
		"panicError":  func(context.Context, json.RawMessage) (any, error) { panic(&lambdaTestError{"panicked"}) },
		"unencodable": func(context.Context, json.RawMessage) (any, error) { return func() {}, nil },
	}
	srv := httptest.NewServer(LambdaInvokeHandler(functions))
	defer srv.Close()

	tests := []struct {
		fn         string
		status     int
		funcErr    bool
		body       string // exact, for results and errors
		bodyPrefix string // for 404s
	}{
		{fn: "echo", status: 200, body: `{"got":{"a":1}}`},
		{fn: "pointer", status: 200, funcErr: true, body: `{"errorMessage":"pointer error","errorType":"lambdaTestError"}`},
		{fn: "value", status: 200, funcErr: true, body: `{"errorMessage":"by value","errorType":"lambdaValueError"}`},
		{fn: "new", status: 200, funcErr: true, body: `{"errorMessage":"plain","errorType":"errorString"}`},
		{fn: "errorf", status: 200, funcErr: true, body: `{"errorMessage":"no wrap 1","errorType":"errorString"}`},
		{fn: "wrapf", status: 200, funcErr: true, body: `{"errorMessage":"wrapped: inner","errorType":"wrapError"}`},
		{fn: "invokeError", status: 200, funcErr: true, body: `{"errorMessage":"as is","errorType":"Custom"}`},
		{fn: "panicString", status: 200, funcErr: true, body: `{"errorMessage":"boom","errorType":"string"}`},
		{fn: "panicError", status: 200, funcErr: true, body: `{"errorMessage":"panicked","errorType":"lambdaTestError"}`},
		{fn: "unencodable", status: 200, funcErr: true, body: `{"errorMessage":"json: unsupported type: func()","errorType":"UnsupportedTypeError"}`},
		{fn: "nope", status: 404, bodyPrefix: `{"Message":"Function not found: nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.fn, func(t *testing.T) {
			res, err := http.Post(srv.URL+"/2015-03-31/functions/"+tt.fn+"/invocations", "application/json", strings.NewReader(`{"a":1}`))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (body %s)", res.StatusCode, tt.status, body)
			}
			if got := res.Header.Get("X-Amz-Function-Error"); (got == "Unhandled") != tt.funcErr {
				t.Errorf("X-Amz-Function-Error = %q, want function error %v", got, tt.funcErr)
			}
			if tt.body != "" && string(body) != tt.body {
				t.Errorf("body\n got %s\nwant %s", body, tt.body)
			}
			if tt.bodyPrefix != "" && !strings.HasPrefix(string(body), tt.bodyPrefix) {
				t.Errorf("body %s, want prefix %s", body, tt.bodyPrefix)
			}
		})
	}
}
