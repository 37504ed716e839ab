// Command workflow is the Lambda behind the Task states of the snapshot
// state machine; the event names the task.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/stacksnap/stacksnap/internal/cfntemplate"
	"github.com/stacksnap/stacksnap/internal/config"
	"github.com/stacksnap/stacksnap/internal/dynamostore"
	"github.com/stacksnap/stacksnap/internal/snapshot"
	"github.com/stacksnap/stacksnap/internal/taskhandler"
	"github.com/stacksnap/stacksnap/internal/wiring"
)

func main() {
	var cfg config.Workflow
	log, awsCfg := wiring.Boot(&cfg)
	accounts := wiring.Accounts(awsCfg, cfg.DeploymentAccountID, cfg.TenantRoleName)
	tasks := &snapshot.Tasks{
		Store:         dynamostore.New(dynamodb.NewFromConfig(awsCfg), cfg.TableName),
		Stacks:        wiring.Stacks(accounts),
		Snapshotters:  wiring.Snapshotters(accounts, cfg.RebootInstances),
		ParseTemplate: cfntemplate.Parse,
		FirstWait:     cfg.FirstWaitSeconds,
		MaxWait:       cfg.MaxWaitSeconds,
		BusyLimit:     cfg.BusyLimitSeconds,
		Log:           log,
	}
	lambda.Start(taskhandler.New(tasks))
}
