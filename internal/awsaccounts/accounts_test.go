package awsaccounts_test

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/stacksnap/stacksnap/internal/awsaccounts"
	"github.com/stacksnap/stacksnap/internal/awstest"
	"github.com/stacksnap/stacksnap/internal/snapshot"
)

const (
	deploymentAccount = "123456789012"
	foreignAccount    = "210987654321"
	roleName          = "StacksnapTenant"
)

func TestConfig(t *testing.T) {
	tests := []struct {
		name     string
		roleName string
		tenantID string
		wantKey  string // access key id the config signs with
		wantRole string // role ARN assumed; "" when none is
		code     snapshot.Code
		message  string
	}{
		{name: "OwnAccount", roleName: roleName, tenantID: deploymentAccount, wantKey: "AKIDBASE"},
		{name: "OwnAccountWithoutRole", roleName: "", tenantID: deploymentAccount, wantKey: "AKIDBASE"},
		{name: "ForeignAccount", roleName: roleName, tenantID: foreignAccount, wantKey: "ASIAIOSFODNN7EXAMPLE",
			wantRole: "arn:aws:iam::210987654321:role/StacksnapTenant"},
		{name: "ErrForeignWithoutRole", roleName: "", tenantID: foreignAccount,
			code: snapshot.CodeForbidden, message: "Access was denied to this resource."},
		{name: "ErrTenantNotDigits", roleName: roleName, tenantID: "21098765432x",
			code: snapshot.CodeForbidden, message: "Access was denied to this resource."},
		{name: "ErrTenantTooLong", roleName: roleName, tenantID: "2109876543210",
			code: snapshot.CodeForbidden, message: "Access was denied to this resource."},
		{name: "ErrTenantARNPart", roleName: roleName, tenantID: "1:role/Admin",
			code: snapshot.CodeForbidden, message: "Access was denied to this resource."},
		{name: "ErrTenantEmpty", roleName: roleName, tenantID: "",
			code: snapshot.CodeForbidden, message: "Access was denied to this resource."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := newSTSStub(t)
			accounts := awsaccounts.New(baseConfig(stub), deploymentAccount, tt.roleName, sts.NewFromConfig(baseConfig(stub)))

			cfg, err := accounts.Config(context.Background(), tt.tenantID)
			if tt.code != "" {
				if snapshot.ErrorCode(err) != tt.code || snapshot.ErrorMessage(err) != tt.message {
					t.Fatalf("err = %v, want %s: %s", err, tt.code, tt.message)
				}
				return
			}
			if err != nil {
				t.Fatalf("Config: %v", err)
			}
			if cfg.Region != "eu-west-1" {
				t.Errorf("Region = %q, want the base config's eu-west-1", cfg.Region)
			}
			creds, err := cfg.Credentials.Retrieve(context.Background())
			if err != nil {
				t.Fatalf("Retrieve: %v", err)
			}
			if creds.AccessKeyID != tt.wantKey {
				t.Errorf("AccessKeyID = %q, want %q", creds.AccessKeyID, tt.wantKey)
			}

			requests := stub.requests()
			if tt.wantRole == "" {
				if len(requests) != 0 {
					t.Fatalf("STS got %d requests, want none", len(requests))
				}
				return
			}
			if len(requests) != 1 {
				t.Fatalf("STS got %d requests, want 1", len(requests))
			}
			want := map[string]string{
				"Action":          "AssumeRole",
				"Version":         "2011-06-15",
				"RoleArn":         tt.wantRole,
				"RoleSessionName": "stacksnap-" + tt.tenantID,
			}
			for key, value := range want {
				if got := requests[0].Get(key); got != value {
					t.Errorf("AssumeRole %s = %q, want %q", key, got, value)
				}
			}
		})
	}
}

// TestConfigCachesPerTenant shows that each foreign tenant has one
// credentials provider, shared by every caller, however many ask at once.
func TestConfigCachesPerTenant(t *testing.T) {
	const other = "333333333333"
	stub := newSTSStub(t)
	accounts := awsaccounts.New(baseConfig(stub), deploymentAccount, roleName, sts.NewFromConfig(baseConfig(stub)))

	var wg sync.WaitGroup
	providers := make([]aws.CredentialsProvider, 20)
	for i := range providers {
		tenant := foreignAccount
		if i%2 == 1 {
			tenant = other
		}
		wg.Go(func() {
			cfg, err := accounts.Config(context.Background(), tenant)
			if err != nil {
				t.Errorf("Config(%s): %v", tenant, err)
				return
			}
			if _, err := cfg.Credentials.Retrieve(context.Background()); err != nil {
				t.Errorf("Retrieve(%s): %v", tenant, err)
			}
			providers[i] = cfg.Credentials
		})
	}
	wg.Wait()

	for i := 2; i < len(providers); i++ {
		if providers[i] != providers[i%2] {
			t.Fatalf("caller %d got another provider than caller %d", i, i%2)
		}
	}
	if providers[0] == providers[1] {
		t.Fatal("two tenants share one provider")
	}
	roles := map[string]int{}
	for _, form := range stub.requests() {
		roles[form.Get("RoleArn")]++
	}
	want := map[string]int{
		"arn:aws:iam::210987654321:role/StacksnapTenant": 1,
		"arn:aws:iam::333333333333:role/StacksnapTenant": 1,
	}
	if !maps.Equal(roles, want) {
		t.Errorf("roles assumed (times) = %v, want %v", roles, want)
	}
}

func baseConfig(stub *stsStub) aws.Config {
	return aws.Config{
		Region:      "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDBASE", "SECRETBASE", ""),
		HTTPClient:  &http.Client{Transport: stub},
	}
}

// stsStub answers every STS request with the documented AssumeRole
// response, made to expire an hour from now.
type stsStub struct {
	t    *testing.T
	body string

	mu    sync.Mutex
	forms []url.Values
}

func newSTSStub(t *testing.T) *stsStub {
	t.Helper()
	body, err := os.ReadFile("testdata/sts-assume-role.response.docs.xml")
	if err != nil {
		t.Fatal(err)
	}
	expiration := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	return &stsStub{t: t, body: strings.Replace(string(body), "2019-11-09T13:34:41Z", expiration, 1)}
}

func (s *stsStub) RoundTrip(req *http.Request) (*http.Response, error) {
	form, err := awstest.QueryForm(req)
	if err != nil {
		return nil, err
	}
	operations.Record("sts:" + form.Get("Action"))
	s.mu.Lock()
	s.forms = append(s.forms, form)
	s.mu.Unlock()
	return awstest.Response(req, http.StatusOK, "text/xml", s.body), nil
}

func (s *stsStub) requests() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.forms...)
}
