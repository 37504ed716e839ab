// Package cfnstacks looks up tenants' stacks in CloudFormation.
package cfnstacks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/smithy-go"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// Operations lists the AWS operations this package calls, for the IAM
// policies in template.yaml.
var Operations = []string{
	"cloudformation:DescribeStacks",
	"cloudformation:ListStackResources",
	"cloudformation:GetTemplate",
}

// API is the part of the CloudFormation client the stacks use.
type API interface {
	DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
	ListStackResources(ctx context.Context, in *cloudformation.ListStackResourcesInput, optFns ...func(*cloudformation.Options)) (*cloudformation.ListStackResourcesOutput, error)
	GetTemplate(ctx context.Context, in *cloudformation.GetTemplateInput, optFns ...func(*cloudformation.Options)) (*cloudformation.GetTemplateOutput, error)
}

// Stacks implements snapshot.Stacks over CloudFormation.
type Stacks struct {
	clients func(ctx context.Context, tenantID string) (API, error)
}

var _ snapshot.Stacks = (*Stacks)(nil)

// New returns the stacks reached through clients, which gives the
// CloudFormation client that acts in a tenant's account.
func New(clients func(ctx context.Context, tenantID string) (API, error)) *Stacks {
	return &Stacks{clients: clients}
}

// Stack finds a live stack by name.
func (s *Stacks) Stack(ctx context.Context, tenantID, name string) (snapshot.Stack, error) {
	api, err := s.clients(ctx, tenantID)
	if err != nil {
		return snapshot.Stack{}, err
	}
	stack, err := describe(ctx, api, name, name)
	if err != nil {
		return snapshot.Stack{}, err
	}
	arn := aws.ToString(stack.StackId)
	updated := aws.ToTime(stack.CreationTime)
	if stack.LastUpdatedTime != nil {
		updated = *stack.LastUpdatedTime
	}
	return snapshot.Stack{
		Name:      aws.ToString(stack.StackName),
		ID:        snapshot.StackIDFromARN(arn),
		ARN:       arn,
		Status:    string(stack.StackStatus),
		UpdatedAt: updated,
	}, nil
}

// Resources lists the stack's resources and, under qualified logical ids
// ("Parent.Child"), those of its nested stacks, sorted by logical id.
// Resources already deleted are left out.
func (s *Stacks) Resources(ctx context.Context, tenantID string, stack snapshot.Stack) ([]snapshot.Resource, error) {
	api, err := s.clients(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	resources, err := listResources(ctx, api, stack.Name, stack.ARN, "")
	if err != nil {
		return nil, err
	}
	slices.SortFunc(resources, func(a, b snapshot.Resource) int { return strings.Compare(a.LogicalID, b.LogicalID) })
	return resources, nil
}

// listResources lists the resources of the stack arn, descending into
// nested stacks; prefix qualifies the logical ids of a nested stack's
// resources. name is the root stack's, for errors.
func listResources(ctx context.Context, api API, name, arn, prefix string) ([]snapshot.Resource, error) {
	var resources []snapshot.Resource
	pages := cloudformation.NewListStackResourcesPaginator(api, &cloudformation.ListStackResourcesInput{StackName: aws.String(arn)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, apiError(err, name, "list resources of stack")
		}
		for _, summary := range page.StackResourceSummaries {
			if summary.ResourceStatus == types.ResourceStatusDeleteComplete {
				continue
			}
			r := snapshot.Resource{
				LogicalID:  prefix + aws.ToString(summary.LogicalResourceId),
				PhysicalID: aws.ToString(summary.PhysicalResourceId),
				Type:       aws.ToString(summary.ResourceType),
			}
			resources = append(resources, r)
			// A nested stack whose creation failed early has no ARN to list.
			if r.Type == "AWS::CloudFormation::Stack" && r.PhysicalID != "" {
				nested, err := listResources(ctx, api, name, r.PhysicalID, r.LogicalID+".")
				if err != nil {
					return nil, err
				}
				resources = append(resources, nested...)
			}
		}
	}
	return resources, nil
}

// Definition reads the template the stack was made from, as it was sent
// (JSON or YAML), with its parameters and tags. NoEcho parameters stay
// masked as CloudFormation returns them, and SSM parameters keep the
// parameter's name rather than the value it resolved to.
func (s *Stacks) Definition(ctx context.Context, tenantID string, stack snapshot.Stack) (snapshot.Definition, error) {
	api, err := s.clients(ctx, tenantID)
	if err != nil {
		return snapshot.Definition{}, err
	}
	// Original is the template as the tenant wrote it, before transforms
	// such as SAM's expanded it.
	template, err := api.GetTemplate(ctx, &cloudformation.GetTemplateInput{
		StackName:     aws.String(stack.ARN),
		TemplateStage: types.TemplateStageOriginal,
	})
	if err != nil {
		return snapshot.Definition{}, apiError(err, stack.Name, "get template of stack")
	}
	described, err := describe(ctx, api, stack.ARN, stack.Name)
	if err != nil {
		return snapshot.Definition{}, err
	}
	def := snapshot.Definition{
		TemplateBody: aws.ToString(template.TemplateBody),
		Parameters:   make(map[string]string, len(described.Parameters)),
		Tags:         make(map[string]string, len(described.Tags)),
	}
	for _, p := range described.Parameters {
		def.Parameters[aws.ToString(p.ParameterKey)] = aws.ToString(p.ParameterValue)
	}
	for _, t := range described.Tags {
		def.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return def, nil
}

// describe describes one stack by name or ARN; name is what errors call it.
func describe(ctx context.Context, api API, stackName, name string) (types.Stack, error) {
	out, err := api.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stackName)})
	if err != nil {
		return types.Stack{}, apiError(err, name, "describe stack")
	}
	if len(out.Stacks) == 0 {
		return types.Stack{}, errStackNotFound(name)
	}
	return out.Stacks[0], nil
}

// apiError turns CloudFormation's answer into the domain's errors: a stack
// that does not exist, access denied (the tenant's role, or the role to
// assume, does not let us look), throttling (which the workflow retries),
// or an internal error with context.
func apiError(err error, name, doing string) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		// CloudFormation has no error code of its own for a missing stack.
		if apiErr.ErrorCode() == "ValidationError" && strings.HasPrefix(apiErr.ErrorMessage(), "Stack with id ") &&
			strings.HasSuffix(apiErr.ErrorMessage(), " does not exist") {
			return errStackNotFound(name)
		}
		if apiErr.ErrorCode() == "AccessDenied" {
			return snapshot.Errorf(snapshot.CodeForbidden, "Access was denied to this resource.")
		}
		if _, ok := retry.DefaultThrottleErrorCodes[apiErr.ErrorCode()]; ok {
			return &snapshot.ThrottlingError{Message: apiErr.ErrorMessage()}
		}
	}
	return fmt.Errorf("cfnstacks: %s %s: %w", doing, name, err)
}

func errStackNotFound(name string) *snapshot.Error {
	return snapshot.Errorf(snapshot.CodeStackNotFound, "The Stack (%s) could not be found.", name)
}
