package snapshot

// StackData is the Heat dump of a stack at the moment of its snapshot: the
// `data` of a COMPLETE snapshot.
type StackData struct {
	Name        string                  `json:"name"`
	ID          string                  `json:"id"`
	Action      string                  `json:"action"`
	Status      string                  `json:"status"`
	Template    map[string]any          `json:"template"`
	Environment Environment             `json:"environment"`
	Files       map[string]any          `json:"files"`
	ProjectID   string                  `json:"project_id"`
	Tags        map[string]string       `json:"tags"`
	Resources   map[string]ResourceDump `json:"resources"`
}

// Environment is Heat's user environment; CloudFormation has parameters only.
type Environment struct {
	Parameters        map[string]string `json:"parameters"`
	ResourceRegistry  map[string]any    `json:"resource_registry"`
	ParameterDefaults map[string]any    `json:"parameter_defaults"`
	EventSinks        []any             `json:"event_sinks"`
}

// ResourceDump is one resource in the dump, in Heat's shape.
type ResourceDump struct {
	Name         string         `json:"name"`
	ResourceID   string         `json:"resource_id"`
	Type         string         `json:"type"`
	Action       string         `json:"action"`
	Status       string         `json:"status"`
	Metadata     map[string]any `json:"metadata"`
	ResourceData ResourceData   `json:"resource_data"`
}

// buildData makes the dump of a stack from its definition, its parsed
// template and the artefacts of the snapshot's plan.
func buildData(tenantID string, stack Stack, def Definition, template map[string]any, plan map[string]ResourceProgress) StackData {
	resources := make(map[string]ResourceDump, len(plan))
	for id, p := range plan {
		data := p.Data
		if data == nil {
			data = ResourceData{}
		}
		resources[id] = ResourceDump{
			Name:         id,
			ResourceID:   p.PhysicalID,
			Type:         p.Type,
			Action:       "SNAPSHOT",
			Status:       "COMPLETE",
			Metadata:     map[string]any{},
			ResourceData: data,
		}
	}
	params := def.Parameters
	if params == nil {
		params = map[string]string{}
	}
	tags := def.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return StackData{
		Name:     stack.Name,
		ID:       stack.ID,
		Action:   "SNAPSHOT",
		Status:   "COMPLETE",
		Template: template,
		Environment: Environment{
			Parameters:        params,
			ResourceRegistry:  map[string]any{"resources": map[string]any{}},
			ParameterDefaults: map[string]any{},
			EventSinks:        []any{},
		},
		Files:     map[string]any{},
		ProjectID: tenantID,
		Tags:      tags,
		Resources: resources,
	}
}
