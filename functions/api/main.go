// Command api is the Lambda behind the REST API: Heat's snapshot calls.
package main

import (
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/stacksnap/stacksnap/internal/config"
	"github.com/stacksnap/stacksnap/internal/dynamostore"
	"github.com/stacksnap/stacksnap/internal/httpapi"
	"github.com/stacksnap/stacksnap/internal/sfnworkflows"
	"github.com/stacksnap/stacksnap/internal/snapshot"
	"github.com/stacksnap/stacksnap/internal/wiring"
)

func main() {
	var cfg config.API
	log, awsCfg := wiring.Boot(&cfg)
	svc := &snapshot.Service{
		Store:     dynamostore.New(dynamodb.NewFromConfig(awsCfg), cfg.TableName),
		Stacks:    wiring.Stacks(wiring.Accounts(awsCfg, cfg.DeploymentAccountID, cfg.TenantRoleName)),
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
