package cfntemplate

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// TemplateResource is one entry of a template's Resources section.
type TemplateResource struct {
	LogicalID  string
	Type       string
	Properties map[string]any // nil when the resource has none
}

// Resources lists the resources of a parsed template, sorted by logical id.
// A template without a Resources section has none.
func Resources(tpl map[string]any) ([]TemplateResource, error) {
	section, err := section(tpl, "Resources")
	if err != nil {
		return nil, err
	}
	resources := make([]TemplateResource, 0, len(section))
	for id, raw := range section {
		body, ok := raw.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("resource %s is not a mapping", id)
		}
		typ, ok := body["Type"].(string)
		if !ok || typ == "" {
			return nil, fmt.Errorf("resource %s has no Type", id)
		}
		var props map[string]any
		if p, present := body["Properties"]; present && p != nil {
			if props, ok = p.(map[string]any); !ok {
				return nil, fmt.Errorf("resource %s: Properties is not a mapping", id)
			}
		}
		resources = append(resources, TemplateResource{LogicalID: id, Type: typ, Properties: props})
	}
	sort.Slice(resources, func(i, j int) bool { return resources[i].LogicalID < resources[j].LogicalID })
	return resources, nil
}

// Parameter is what a template declares of one parameter that matters for
// the values a stack shows.
type Parameter struct {
	Default    string
	HasDefault bool
	NoEcho     bool
}

// Parameters returns the template's parameters by name.
func Parameters(tpl map[string]any) (map[string]Parameter, error) {
	section, err := section(tpl, "Parameters")
	if err != nil {
		return nil, err
	}
	params := make(map[string]Parameter, len(section))
	for name, raw := range section {
		body, ok := raw.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("parameter %s is not a mapping", name)
		}
		var p Parameter
		if d, present := body["Default"]; present && d != nil {
			if p.Default, ok = scalarText(d); !ok {
				return nil, fmt.Errorf("parameter %s: Default is not a string", name)
			}
			p.HasDefault = true
		}
		// CloudFormation takes NoEcho as a boolean or the string "true".
		noEcho, _ := scalarText(body["NoEcho"])
		p.NoEcho = strings.EqualFold(noEcho, "true")
		params[name] = p
	}
	return params, nil
}

// section returns a top-level section that must be a mapping, or nil when
// the template lacks it.
func section(tpl map[string]any, name string) (map[string]any, error) {
	raw, present := tpl[name]
	if !present || raw == nil {
		return nil, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s section is not a mapping", name)
	}
	return m, nil
}

// scalarText spells a string, number or boolean as CloudFormation's
// parameter values do.
func scalarText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		return fmt.Sprint(v), true
	}
	return "", false
}
