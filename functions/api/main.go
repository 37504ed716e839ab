// Command api is the Lambda behind the REST API: Heat's snapshot calls.
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/stacksnap/stacksnap/internal/awsaccounts"
	"github.com/stacksnap/stacksnap/internal/cfnstacks"
	"github.com/stacksnap/stacksnap/internal/config"
	"github.com/stacksnap/stacksnap/internal/dynamostore"
	"github.com/stacksnap/stacksnap/internal/httpapi"
	"github.com/stacksnap/stacksnap/internal/sfnworkflows"
	"github.com/stacksnap/stacksnap/internal/snapshot"
)

func main() {
	log := lambdacontext.NewLogger()
	var cfg config.API
	if err := config.Load(&cfg, os.Getenv); err != nil {
		log.Error("configuration", "error", err)
		os.Exit(1)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		log.Error("AWS configuration", "error", err)
		os.Exit(1)
	}
	accounts := awsaccounts.New(awsCfg, cfg.DeploymentAccountID, cfg.TenantRoleName, sts.NewFromConfig(awsCfg))
	svc := &snapshot.Service{
		Store:     dynamostore.New(dynamodb.NewFromConfig(awsCfg), cfg.TableName),
		Stacks:    cfnstacks.New(awsaccounts.Clients(accounts, func(c aws.Config) cfnstacks.API { return cloudformation.NewFromConfig(c) })),
		Workflows: sfnworkflows.New(sfn.NewFromConfig(awsCfg), cfg.StateMachineARN),
		Limit:     cfg.SnapshotLimit,
		Now:       time.Now,
		NewID:     snapshot.NewID,
		LockGrace: time.Duration(cfg.LockGraceSeconds) * time.Second,
		Log:       log,
	}
	api := &httpapi.API{Service: svc, Log: log}
	lambda.Start(api.HandleAPIGateway)
}

