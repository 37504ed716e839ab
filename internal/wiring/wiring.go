// Package wiring builds the real AWS adapters for a tenant-aware
// deployment, for the Lambda functions and for the local runner's -cloud
// aws, and starts the functions. It is edge code: it knows every adapter,
// and no adapter knows it.
package wiring

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/stacksnap/stacksnap/internal/awsaccounts"
	"github.com/stacksnap/stacksnap/internal/awssnap"
	"github.com/stacksnap/stacksnap/internal/cfnstacks"
	"github.com/stacksnap/stacksnap/internal/config"
	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// Accounts reaches the deployment's account with cfg, and other tenants
// through the role tenantRoleName in their accounts.
func Accounts(cfg aws.Config, deploymentAccount, tenantRoleName string) *awsaccounts.Accounts {
	return awsaccounts.New(cfg, deploymentAccount, tenantRoleName, sts.NewFromConfig(cfg))
}

// Stacks looks up CloudFormation stacks in the tenants' accounts.
func Stacks(accounts *awsaccounts.Accounts) *cfnstacks.Stacks {
	return cfnstacks.New(awsaccounts.Clients(accounts, func(c aws.Config) cfnstacks.API {
		return cloudformation.NewFromConfig(c)
	}))
}

// Snapshotters makes native artefacts in the tenants' accounts.
func Snapshotters(accounts *awsaccounts.Accounts, rebootInstances bool) snapshot.Snapshotters {
	return awssnap.New(awssnap.Options{
		EC2:             awsaccounts.Clients(accounts, func(c aws.Config) awssnap.EC2API { return ec2.NewFromConfig(c) }),
		RDS:             awsaccounts.Clients(accounts, func(c aws.Config) awssnap.RDSAPI { return rds.NewFromConfig(c) }),
		DynamoDB:        awsaccounts.Clients(accounts, func(c aws.Config) awssnap.DynamoDBAPI { return dynamodb.NewFromConfig(c) }),
		RebootInstances: rebootInstances,
	})
}

// Boot starts a Lambda function: its logger, its configuration read from
// the environment into cfg (a pointer to a config struct), and the AWS
// configuration of the function's role. A function that cannot read its
// configuration logs every problem and exits: Lambda reports the failed
// start, and nothing half-configured runs.
func Boot(cfg any) (*slog.Logger, aws.Config) {
	log := lambdacontext.NewLogger()
	if err := config.Load(cfg, os.Getenv); err != nil {
		log.Error("configuration", "error", err)
		os.Exit(1)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		log.Error("AWS configuration", "error", err)
		os.Exit(1)
	}
	return log, awsCfg
}
