// Package samtemplate reads template.yaml for the checks that `sam build`
// and `sam deploy` cannot run here: build targets, code and definition
// paths, substitutions, environment and IAM policies. It decodes the
// template itself (goformation fails on newer function properties and
// drops intrinsics), keeping intrinsics in their long form.
package samtemplate

import (
	"fmt"
	"os"
	"sort"

	"github.com/stacksnap/stacksnap/internal/cfntemplate"
)

// Template is a decoded SAM template.
type Template struct {
	raw map[string]any
}

// Load reads and decodes a template file.
func Load(path string) (*Template, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	raw, err := cfntemplate.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Template{raw: raw}, nil
}

// Resource is one resource of the template.
type Resource struct {
	LogicalID  string
	Type       string
	Properties map[string]any
	Metadata   map[string]any
}

// Resources returns the resources of a type, sorted by logical id.
func (t *Template) Resources(resourceType string) []Resource {
	var out []Resource
	resources, _ := t.raw["Resources"].(map[string]any)
	for id, v := range resources {
		r, _ := v.(map[string]any)
		if r["Type"] != resourceType {
			continue
		}
		props, _ := r["Properties"].(map[string]any)
		meta, _ := r["Metadata"].(map[string]any)
		out = append(out, Resource{LogicalID: id, Type: resourceType, Properties: props, Metadata: meta})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LogicalID < out[j].LogicalID })
	return out
}

// Functions returns the template's AWS::Serverless::Function resources.
func (t *Template) Functions() []Resource { return t.Resources("AWS::Serverless::Function") }

// Environment returns the environment variables of a function, with the
// Globals merged in as SAM merges them.
func (t *Template) Environment(fn Resource) map[string]any {
	env := map[string]any{}
	globals, _ := t.raw["Globals"].(map[string]any)
	globalFn, _ := globals["Function"].(map[string]any)
	for _, props := range []map[string]any{globalFn, fn.Properties} {
		e, _ := props["Environment"].(map[string]any)
		vars, _ := e["Variables"].(map[string]any)
		for k, v := range vars {
			env[k] = v
		}
	}
	return env
}

// Statement is one IAM policy statement.
type Statement struct {
	Sid       string
	Effect    string
	Actions   []string
	Resources []any
}

// Statements returns the inline policy statements of a resource's
// Policies (a function's or a state machine's), including those behind an
// Fn::If; SAM policy templates (such as LambdaInvokePolicy) are not
// statements and are skipped.
func Statements(r Resource) []Statement {
	var out []Statement
	policies, _ := r.Properties["Policies"].([]any)
	for _, p := range policies {
		for _, doc := range policyDocuments(p) {
			stmts, _ := doc["Statement"].([]any)
			for _, s := range stmts {
				m, _ := s.(map[string]any)
				sid, _ := m["Sid"].(string)
				effect, _ := m["Effect"].(string)
				out = append(out, Statement{Sid: sid, Effect: effect, Actions: stringList(m["Action"]), Resources: list(m["Resource"])})
			}
		}
	}
	return out
}

// policyDocuments returns the policy documents a Policies entry can stand
// for: itself, or both branches of an Fn::If.
func policyDocuments(p any) []map[string]any {
	m, _ := p.(map[string]any)
	if branches, ok := m["Fn::If"].([]any); ok && len(branches) == 3 {
		return append(policyDocuments(branches[1]), policyDocuments(branches[2])...)
	}
	if _, ok := m["Statement"]; ok {
		return []map[string]any{m}
	}
	return nil
}

func stringList(v any) []string {
	var out []string
	for _, x := range list(v) {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func list(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}
