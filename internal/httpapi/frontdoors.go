package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// maxBody is API Gateway's limit on a request body, which the local front
// door keeps too, answering as API Gateway does past it.
const maxBody = 10 << 20

// HandleAPIGateway serves an API Gateway REST API proxy event. With IAM
// auth, API Gateway has checked the signature and names the caller's
// account in the request context.
func (a *API) HandleAPIGateway(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		decoded, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			decoded = nil // an undecodable body is answered as a missing one
		}
		body = decoded
	}
	query := url.Values{}
	for k, vs := range ev.MultiValueQueryStringParameters {
		query[k] = vs
	}
	for k, v := range ev.QueryStringParameters {
		if _, ok := query[k]; !ok {
			query.Set(k, v)
		}
	}
	resp := a.Serve(ctx, Request{
		Method:    ev.HTTPMethod,
		Path:      ev.Path,
		ClientURL: clientURL(ev),
		Query:     query,
		Body:      body,
		Caller:    snapshot.Caller{AccountID: ev.RequestContext.Identity.AccountID},
	})
	out := events.APIGatewayProxyResponse{StatusCode: resp.Status, Headers: resp.Headers, Body: string(resp.Body)}
	if len(resp.Body) > gzipAbove && acceptsGzip(ev) {
		out.Body, out.IsBase64Encoded = gzipBase64(resp.Body), true
		out.Headers["Content-Encoding"] = "gzip"
		out.Headers["Vary"] = "Accept-Encoding"
	}
	return out, nil
}

// clientURL rebuilds the URL the client called: the domain API Gateway
// answered on, and the path with the stage (or a custom domain's base
// path).
func clientURL(ev events.APIGatewayProxyRequest) string {
	host := ev.RequestContext.DomainName
	for k, v := range ev.Headers {
		if strings.EqualFold(k, "Host") && v != "" && host == "" {
			host = v
		}
	}
	path := ev.RequestContext.Path
	if path == "" {
		path = ev.Path
	}
	return "https://" + host + path
}

// writeTooLarge answers a body over maxBody as the API's gateway response
// REQUEST_TOO_LARGE does on AWS (template.yaml).
func writeTooLarge(w http.ResponseWriter) {
	const explanation = "The body of your request was too large for this server."
	body, _ := json.Marshal(heatError{
		Code: http.StatusRequestEntityTooLarge, Title: "Request Entity Too Large", Explanation: explanation,
		Error: heatErrInfo{Type: "HTTPRequestEntityTooLarge", Message: explanation},
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Openstack-Request-Id", "req-"+uuid.NewString())
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	_, _ = w.Write(body)
}

// gzipAbove is the size above which a response is compressed for clients
// that accept it. A Lambda response is at most 6 MB: a stack's list of
// snapshots with their templates can pass that; compressed, JSON shrinks
// tenfold. (API Gateway passes the bytes on as they are because the API
// declares every media type binary.)
const gzipAbove = 64 << 10

func acceptsGzip(ev events.APIGatewayProxyRequest) bool {
	for k, vs := range ev.MultiValueHeaders {
		if strings.EqualFold(k, "Accept-Encoding") {
			for _, v := range vs {
				if strings.Contains(v, "gzip") {
					return true
				}
			}
		}
	}
	for k, v := range ev.Headers {
		if strings.EqualFold(k, "Accept-Encoding") && strings.Contains(v, "gzip") {
			return true
		}
	}
	return false
}

func gzipBase64(body []byte) string {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(body) // writes to memory cannot fail
	_ = zw.Close()
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// Handler serves the API over net/http for the local runner, where there
// is no IAM: callerAccount says whose account a request comes from, and a
// request may name another with the header X-Stacksnap-Caller-Account (to
// see how the API treats a foreign caller).
func (a *API) Handler(callerAccount string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller := callerAccount
		if h := r.Header.Get("X-Stacksnap-Caller-Account"); h != "" {
			caller = h
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeTooLarge(w)
			return
		}
		if err != nil {
			body = nil // a body cut short is answered as a missing one
		}
		resp := a.Serve(r.Context(), Request{
			Method:    r.Method,
			Path:      r.URL.EscapedPath(),
			ClientURL: "http://" + r.Host + r.URL.EscapedPath(),
			Query:     r.URL.Query(),
			Body:      body,
			Caller:    snapshot.Caller{AccountID: caller},
		})
		for k, v := range resp.Headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(resp.Status)
		_, _ = w.Write(resp.Body)
	})
}
