package cfntemplate

import (
	"reflect"
	"strings"
	"testing"
)

func TestResources(t *testing.T) {
	tpl, err := Parse([]byte(`
Resources:
  Volume:
    Type: AWS::EC2::Volume
    Properties:
      Size: 5
  Bucket:
    Type: AWS::S3::Bucket
`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Resources(tpl)
	if err != nil {
		t.Fatal(err)
	}
	tpl2, _ := Parse([]byte(`{"Resources": {"Volume": {"Type": "AWS::EC2::Volume", "Properties": {"Size": 5}}}}`))
	want := []TemplateResource{
		{LogicalID: "Bucket", Type: "AWS::S3::Bucket"},
		{LogicalID: "Volume", Type: "AWS::EC2::Volume", Properties: tpl2["Resources"].(map[string]any)["Volume"].(map[string]any)["Properties"].(map[string]any)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Resources = %#v, want %#v", got, want)
	}
}

func TestResourcesErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{"section not a mapping", "Resources: [a]", "Resources section is not a mapping"},
		{"resource not a mapping", "Resources: {A: x}", "resource A is not a mapping"},
		{"no Type", "Resources: {A: {Properties: {}}}", "resource A has no Type"},
		{"Type not a string", "Resources: {A: {Type: !Ref T}}", "resource A has no Type"},
		{"Properties not a mapping", "Resources: {A: {Type: X, Properties: [1]}}", "resource A: Properties is not a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := Parse([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Resources(tpl)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Resources error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParameters(t *testing.T) {
	tpl, err := Parse([]byte(`
Parameters:
  Name: {Type: String, Default: web}
  Count: {Type: Number, Default: 3}
  Flag: {Type: String, Default: true}
  Empty: {Type: String, Default: ""}
  Required: {Type: String}
  Secret: {Type: String, NoEcho: "true"}
  SecretBool: {Type: String, NoEcho: true, Default: x}
  NotSecret: {Type: String, NoEcho: false}
`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parameters(tpl)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Parameter{
		"Name":       {Default: "web", HasDefault: true},
		"Count":      {Default: "3", HasDefault: true},
		"Flag":       {Default: "true", HasDefault: true},
		"Empty":      {Default: "", HasDefault: true},
		"Required":   {},
		"Secret":     {NoEcho: true},
		"SecretBool": {Default: "x", HasDefault: true, NoEcho: true},
		"NotSecret":  {},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parameters = %#v, want %#v", got, want)
	}
}

func TestParametersErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{"section not a mapping", "Parameters: x", "Parameters section is not a mapping"},
		{"parameter not a mapping", "Parameters: {P: x}", "parameter P is not a mapping"},
		{"Default a list", "Parameters: {P: {Default: [a]}}", "parameter P: Default is not a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := Parse([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parameters(tpl)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parameters error = %v, want %q", err, tt.want)
			}
		})
	}
}
