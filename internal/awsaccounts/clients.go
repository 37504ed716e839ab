package awsaccounts

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// ConfigSource hands out the configuration of a tenant account; *Accounts
// is one.
type ConfigSource interface {
	Config(ctx context.Context, tenantID string) (aws.Config, error)
}

// Clients returns a function that gives the client of one AWS service for
// a tenant account, made once per tenant by newClient (for example
// ec2.NewFromConfig) from that tenant's configuration.
func Clients[C any](accounts ConfigSource, newClient func(aws.Config) C) func(context.Context, string) (C, error) {
	var mu sync.Mutex
	clients := map[string]C{}
	return func(ctx context.Context, tenantID string) (C, error) {
		mu.Lock()
		defer mu.Unlock()
		if c, ok := clients[tenantID]; ok {
			return c, nil
		}
		cfg, err := accounts.Config(ctx, tenantID)
		if err != nil {
			var zero C
			return zero, err
		}
		c := newClient(cfg)
		clients[tenantID] = c
		return c, nil
	}
}
