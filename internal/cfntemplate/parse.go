// Package cfntemplate reads CloudFormation templates, JSON or YAML, into the
// object that the template's JSON form decodes to, and lists what a stack
// made from it holds. It knows nothing of AWS APIs.
package cfntemplate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Parse reads a CloudFormation template in JSON or YAML and returns the
// object its JSON form decodes to: YAML short-form functions (!Ref, !GetAtt,
// !Sub, ...) become their long forms, map keys are strings, dates such as
// AWSTemplateFormatVersion's 2010-09-09 stay strings.
//
// Numbers are json.Number, so that no digit of a large integer is lost and
// the result encodes back to the same JSON: decoding that JSON with
// json.Decoder.UseNumber gives a value equal to the one returned. YAML
// numbers in notations JSON lacks (0x1F, 0o17, 1_000, +1.5) are rewritten in
// decimal; .inf and .nan, which JSON cannot hold, stay strings.
//
// As CloudFormation does, Parse refuses YAML aliases, merge keys (<<) and the
// !!binary, !!set, !!omap and !!pairs types.
func Parse(body []byte) (map[string]any, error) {
	body = bytes.TrimPrefix(body, []byte("\xEF\xBB\xBF"))
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, errors.New("template is empty")
	}
	if trimmed[0] != '{' {
		return parseYAML(body)
	}
	tpl, jsonErr := parseJSON(body)
	if jsonErr == nil {
		return tpl, nil
	}
	// A YAML flow mapping also starts with '{'.
	if tpl, err := parseYAML(body); err == nil {
		return tpl, nil
	}
	return nil, fmt.Errorf("template is not valid JSON: %w", jsonErr)
}

func parseJSON(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var tpl map[string]any
	if err := dec.Decode(&tpl); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the top-level object")
	}
	return tpl, nil
}

func parseYAML(body []byte) (map[string]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(body))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, errors.New("template is empty")
		}
		return nil, fmt.Errorf("template is not valid YAML: %w", err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, errors.New("template has more than one YAML document")
	case err != io.EOF:
		return nil, fmt.Errorf("template is not valid YAML: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("template is empty")
	}
	top, err := value(doc.Content[0])
	if err != nil {
		return nil, err
	}
	tpl, ok := top.(map[string]any)
	if !ok {
		return nil, errors.New("template's top level is not a mapping")
	}
	return tpl, nil
}

// shortForms maps each CloudFormation YAML short-form tag to the key of its
// long form.
var shortForms = map[string]string{
	"!Ref":       "Ref",
	"!Condition": "Condition",
}

func init() {
	for _, fn := range []string{
		"And", "Base64", "Cidr", "Contains", "EachMemberEquals", "EachMemberIn",
		"Equals", "FindInMap", "GetAtt", "GetAZs", "If", "ImportValue",
		"Join", "Length", "Not", "Or", "RefAll", "Select", "Split", "Sub",
		"ToJsonString", "Transform", "ValueOf", "ValueOfAll", "Implies",
	} {
		shortForms["!"+fn] = "Fn::" + fn
	}
}

// value converts one YAML node into its JSON-form value.
func value(n *yaml.Node) (any, error) {
	if n.Kind == yaml.AliasNode {
		return nil, aliasError(n)
	}
	tag := n.ShortTag()
	if strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!") {
		return function(n, tag)
	}
	switch n.Kind {
	case yaml.MappingNode:
		if tag != "!!map" {
			return nil, unsupportedTag(n, tag)
		}
		return mapping(n)
	case yaml.SequenceNode:
		if tag != "!!seq" {
			return nil, unsupportedTag(n, tag)
		}
		return sequence(n)
	case yaml.ScalarNode:
		return scalar(n, tag)
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
}

// function turns a short-form tag into its long form: {"Fn::X": value}.
func function(n *yaml.Node, tag string) (any, error) {
	key, ok := shortForms[tag]
	if !ok {
		return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, tag)
	}
	if n.Kind != yaml.ScalarNode {
		untagged := *n
		untagged.Tag = ""
		arg, err := value(&untagged)
		if err != nil {
			return nil, err
		}
		return map[string]any{key: arg}, nil
	}
	// A tagged scalar is always a string, whatever it looks like.
	if tag != "!GetAtt" {
		return map[string]any{key: n.Value}, nil
	}
	resource, attribute, ok := strings.Cut(n.Value, ".")
	if !ok {
		return nil, fmt.Errorf("line %d: !GetAtt %q is not Resource.Attribute", n.Line, n.Value)
	}
	return map[string]any{key: []any{resource, attribute}}, nil
}

func mapping(n *yaml.Node) (map[string]any, error) {
	m := make(map[string]any, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, err := key(n.Content[i])
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("line %d: duplicate key %q", n.Content[i].Line, k)
		}
		v, err := value(n.Content[i+1])
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, nil
}

// key returns a mapping key as JSON would spell it: the scalar's text as
// written, so that `1: x` and `2010-09-09: x` keep their keys.
func key(n *yaml.Node) (string, error) {
	if n.Kind == yaml.AliasNode {
		return "", aliasError(n)
	}
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("line %d: a mapping key must be a string", n.Line)
	}
	switch tag := n.ShortTag(); tag {
	case "!!merge":
		return "", fmt.Errorf("line %d: YAML merge keys (<<) are not supported in CloudFormation templates", n.Line)
	case "!!str", "!!int", "!!float", "!!bool", "!!null", "!!timestamp":
		return n.Value, nil
	default:
		return "", fmt.Errorf("line %d: a mapping key must be a string, not %s", n.Line, tag)
	}
}

func sequence(n *yaml.Node) ([]any, error) {
	s := make([]any, 0, len(n.Content))
	for _, c := range n.Content {
		v, err := value(c)
		if err != nil {
			return nil, err
		}
		s = append(s, v)
	}
	return s, nil
}

// jsonNumber matches a number as JSON writes it.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)

func scalar(n *yaml.Node, tag string) (any, error) {
	switch tag {
	case "!!str", "!!timestamp", "!!merge":
		return n.Value, nil
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return b, nil
	case "!!int", "!!float":
		return number(n)
	}
	return nil, unsupportedTag(n, tag)
}

// number returns a YAML number as a json.Number, keeping its text when JSON
// can read it as is.
func number(n *yaml.Node) (any, error) {
	if jsonNumber.MatchString(n.Value) {
		return json.Number(n.Value), nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, fmt.Errorf("line %d: %w", n.Line, err)
	}
	switch v := v.(type) {
	case int:
		return json.Number(strconv.Itoa(v)), nil
	case int64:
		return json.Number(strconv.FormatInt(v, 10)), nil
	case uint64:
		return json.Number(strconv.FormatUint(v, 10)), nil
	case float64:
		s := strconv.FormatFloat(v, 'g', -1, 64)
		if !jsonNumber.MatchString(s) { // Inf, NaN
			return n.Value, nil
		}
		return json.Number(s), nil
	}
	return nil, fmt.Errorf("line %d: %q is not a number", n.Line, n.Value)
}

func aliasError(n *yaml.Node) error {
	return fmt.Errorf("line %d: YAML aliases (*%s) are not supported in CloudFormation templates", n.Line, n.Value)
}

func unsupportedTag(n *yaml.Node, tag string) error {
	return fmt.Errorf("line %d: tag %s is not supported in CloudFormation templates", n.Line, tag)
}
