// Command events is the Lambda behind the EventBridge rule that reports
// snapshot workflows that failed, timed out or were aborted.
package main

import (
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/stacksnap/stacksnap/internal/config"
	"github.com/stacksnap/stacksnap/internal/dynamostore"
	"github.com/stacksnap/stacksnap/internal/eventhandler"
	"github.com/stacksnap/stacksnap/internal/sfnworkflows"
	"github.com/stacksnap/stacksnap/internal/snapshot"
	"github.com/stacksnap/stacksnap/internal/wiring"
)

func main() {
	var cfg config.Events
	log, awsCfg := wiring.Boot(&cfg)
	svc := &snapshot.Service{
		Store:     dynamostore.New(dynamodb.NewFromConfig(awsCfg), cfg.TableName),
		Workflows: sfnworkflows.New(sfn.NewFromConfig(awsCfg), cfg.StateMachineARN),
		Now:       time.Now,
		Log:       log,
	}
	lambda.Start(eventhandler.New(svc, cfg.StateMachineARN, log))
}
