package localaws

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"

	"github.com/aws/aws-lambda-go/lambda/messages"
)

// LambdaInvokeHandler serves the Lambda Invoke API
// (POST /2015-03-31/functions/{name}/invocations) for the given functions,
// reporting errors the way a Go function deployed with aws-lambda-go does:
// HTTP 200, X-Amz-Function-Error: Unhandled and {"errorMessage","errorType"},
// where errorType is the Go type name of the error. Step Functions matches
// Retry and Catch on that name.
func LambdaInvokeHandler(functions map[string]func(ctx context.Context, payload json.RawMessage) (any, error)) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2015-03-31/functions/{name}/invocations", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		fn, ok := functions[name]
		if !ok {
			w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
			writeLambdaJSON(w, http.StatusNotFound, map[string]string{
				"Type":    "User",
				"Message": "Function not found: " + name,
			})
			return
		}
		payload, err := io.ReadAll(r.Body)
		if err != nil {
			writeLambdaJSON(w, http.StatusBadRequest, map[string]string{"message": err.Error()})
			return
		}
		result, fnErr := invokeLocal(r.Context(), fn, payload)
		if fnErr != nil {
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			writeLambdaJSON(w, http.StatusOK, fnErr)
			return
		}
		body, err := json.Marshal(result)
		if err != nil {
			// aws-lambda-go reports an unencodable result as a function error too.
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			writeLambdaJSON(w, http.StatusOK, lambdaError(err))
			return
		}
		writeLambdaBody(w, http.StatusOK, body)
	})
	return mux
}

// invokeLocal runs fn, turning an error or a panic into what the Lambda runtime
// would report.
func invokeLocal(ctx context.Context, fn func(context.Context, json.RawMessage) (any, error), payload []byte) (result any, fnErr *messages.InvokeResponse_Error) {
	defer func() {
		if v := recover(); v != nil {
			result, fnErr = nil, &messages.InvokeResponse_Error{Type: errorTypeName(v), Message: fmt.Sprintf("%v", v)}
		}
	}()
	result, err := fn(ctx, payload)
	if err != nil {
		return nil, lambdaError(err)
	}
	return result, nil
}

// lambdaError mirrors aws-lambda-go's lambdaErrorResponse (lambda/errors.go):
// an InvokeResponse_Error is passed through, any other error is named after
// its type, pointer dereferenced. So a *snapshot.ThrottlingError is
// "ThrottlingError", errors.New and fmt.Errorf without %w give
// "errorString", and fmt.Errorf with one %w gives "wrapError".
func lambdaError(err error) *messages.InvokeResponse_Error {
	if ive, ok := err.(messages.InvokeResponse_Error); ok {
		return &ive
	}
	return &messages.InvokeResponse_Error{Type: errorTypeName(err), Message: err.Error()}
}

// errorTypeName is aws-lambda-go's getErrorType: the reflect type name,
// pointer dereferenced. It is also used for panic values, so panic("x")
// reports "string" as on Lambda.
func errorTypeName(v any) string {
	t := reflect.TypeOf(v)
	if t.Kind() == reflect.Pointer {
		return t.Elem().Name()
	}
	return t.Name()
}

// writeLambdaJSON encodes with json.Marshal, as aws-lambda-go does: no trailing
// newline, since the error body becomes a Catch's Cause byte for byte.
func writeLambdaJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeLambdaBody(w, status, body)
}

func writeLambdaBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}
