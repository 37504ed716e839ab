// Command workflow is the Lambda behind the Task states of the snapshot
// state machine; the event names the task.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
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
	"github.com/stacksnap/stacksnap/internal/cfntemplate"
	"github.com/stacksnap/stacksnap/internal/config"
	"github.com/stacksnap/stacksnap/internal/dynamostore"
	"github.com/stacksnap/stacksnap/internal/snapshot"
	"github.com/stacksnap/stacksnap/internal/taskhandler"
)

func main() {
	log := lambdacontext.NewLogger()
	var cfg config.Workflow
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
	tasks := &snapshot.Tasks{
		Store:  dynamostore.New(dynamodb.NewFromConfig(awsCfg), cfg.TableName),
		Stacks: cfnstacks.New(awsaccounts.Clients(accounts, func(c aws.Config) cfnstacks.API { return cloudformation.NewFromConfig(c) })),
		Snapshotters: awssnap.New(awssnap.Options{
			EC2:             awsaccounts.Clients(accounts, func(c aws.Config) awssnap.EC2API { return ec2.NewFromConfig(c) }),
			RDS:             awsaccounts.Clients(accounts, func(c aws.Config) awssnap.RDSAPI { return rds.NewFromConfig(c) }),
			DynamoDB:        awsaccounts.Clients(accounts, func(c aws.Config) awssnap.DynamoDBAPI { return dynamodb.NewFromConfig(c) }),
			RebootInstances: cfg.RebootInstances,
		}),
		ParseTemplate: cfntemplate.Parse,
		FirstWait:     cfg.FirstWaitSeconds,
		MaxWait:       cfg.MaxWaitSeconds,
		Log:           log,
	}
	lambda.Start(taskhandler.New(tasks))
}
