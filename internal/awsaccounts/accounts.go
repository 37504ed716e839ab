// Package awsaccounts gives each tenant account the AWS configuration that
// reaches it: the deployment's own, or a role assumed in the tenant's account.
package awsaccounts

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// Operations lists the AWS operations this package calls, for the IAM
// policies in template.yaml.
var Operations = []string{"sts:AssumeRole"}

// STSAPI is the part of the STS client that assuming a role needs.
type STSAPI interface {
	AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error)
}

// Accounts hands out one aws.Config per tenant account. It is safe for
// concurrent use.
type Accounts struct {
	base              aws.Config
	deploymentAccount string
	tenantRoleName    string
	sts               STSAPI

	mu      sync.Mutex
	configs map[string]aws.Config // by tenant id, foreign accounts only
}

// New returns the accounts reached from base, the deployment account's own
// configuration. Other accounts are reached by assuming the role
// tenantRoleName in them; with no role name they are not reached at all.
func New(base aws.Config, deploymentAccount, tenantRoleName string, stsAPI STSAPI) *Accounts {
	return &Accounts{
		base:              base,
		deploymentAccount: deploymentAccount,
		tenantRoleName:    tenantRoleName,
		sts:               stsAPI,
		configs:           map[string]aws.Config{},
	}
}

// Config returns the configuration that acts in the tenant's account. A
// tenant that cannot be reached is an *snapshot.Error with CodeForbidden.
// No call to AWS is made here: the role is assumed when the credentials are
// first used, and again shortly before they expire.
func (a *Accounts) Config(_ context.Context, tenantID string) (aws.Config, error) {
	// The id goes into a role ARN: anything but an account id is refused
	// before it gets there.
	if !isAccountID(tenantID) {
		return aws.Config{}, errForbidden()
	}
	if tenantID == a.deploymentAccount {
		return a.base, nil
	}
	if a.tenantRoleName == "" {
		return aws.Config{}, errForbidden()
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if cfg, ok := a.configs[tenantID]; ok {
		return cfg, nil
	}
	roleARN := fmt.Sprintf("arn:aws:iam::%s:role/%s", tenantID, a.tenantRoleName)
	provider := stscreds.NewAssumeRoleProvider(a.sts, roleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = "stacksnap-" + tenantID
	})
	cfg := a.base.Copy()
	cfg.Credentials = aws.NewCredentialsCache(provider, func(o *aws.CredentialsCacheOptions) {
		// Refresh a little early, so that a request signed just before
		// expiry does not reach AWS with dead credentials.
		o.ExpiryWindow = time.Minute
	})
	a.configs[tenantID] = cfg
	return cfg, nil
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func errForbidden() *snapshot.Error {
	return snapshot.Errorf(snapshot.CodeForbidden, "Access was denied to this resource.")
}
