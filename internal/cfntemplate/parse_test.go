package cfntemplate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const fixtures = "../../local/stacks"

// fixtureTemplates returns the fixture templates by file name.
func fixtureTemplates(t testing.TB) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(fixtures)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		switch filepath.Ext(e.Name()) {
		case ".json", ".yaml", ".yml":
			body, err := os.ReadFile(filepath.Join(fixtures, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			files[e.Name()] = body
		}
	}
	if len(files) == 0 {
		t.Fatalf("no templates in %s", fixtures)
	}
	return files
}

// decodeJSON decodes as the package documents its result can be decoded.
func decodeJSON(t testing.TB, body []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return v
}

func TestParseFixtures(t *testing.T) {
	for name, body := range fixtureTemplates(t) {
		t.Run(name, func(t *testing.T) {
			tpl, err := Parse(body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if v, ok := tpl["AWSTemplateFormatVersion"]; ok && v != "2010-09-09" {
				t.Errorf("AWSTemplateFormatVersion = %#v, want the string 2010-09-09", v)
			}
			resources, err := Resources(tpl)
			if err != nil {
				t.Fatalf("Resources: %v", err)
			}
			if len(resources) == 0 {
				t.Error("no resources")
			}
			if _, err := Parameters(tpl); err != nil {
				t.Errorf("Parameters: %v", err)
			}
			// The result is the JSON form: it encodes and decodes back to itself.
			encoded, err := json.Marshal(tpl)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if back := decodeJSON(t, encoded); !reflect.DeepEqual(back, any(tpl)) {
				t.Error("JSON round trip changed the template")
			}
			if filepath.Ext(name) == ".json" {
				if want := decodeJSON(t, body); !reflect.DeepEqual(any(tpl), want) {
					t.Error("Parse of a JSON template differs from encoding/json's decode")
				}
			}
		})
	}
}

func TestParseYAMLFixtureDetails(t *testing.T) {
	tpl, err := Parse(fixtureTemplates(t)["RDS_MySQL_With_Read_Replica.yaml"])
	if err != nil {
		t.Fatal(err)
	}
	mainDB := tpl["Resources"].(map[string]any)["MainDB"].(map[string]any)["Properties"].(map[string]any)
	tests := []struct {
		name string
		got  any
		want string
	}{
		{"Ref", mainDB["DBName"], `{"Ref":"DBName"}`},
		{"Sub", mainDB["MasterUserPassword"], `{"Fn::Sub":"{{resolve:secretsmanager:${DBCredential}}}"}`},
		{"integer", mainDB["BackupRetentionPeriod"], `7`},
		{"boolean", mainDB["StorageEncrypted"], `true`},
		{"If with nested GetAtt", mainDB["VPCSecurityGroups"],
			`{"Fn::If":["IsEC2VPC",[{"Fn::GetAtt":["DBEC2SecurityGroup","GroupId"]}],{"Ref":"AWS::NoValue"}]}`},
		{"Or of Equals", tpl["Conditions"].(map[string]any)["IsEC2VPC"],
			`{"Fn::Or":[{"Fn::Equals":[{"Ref":"AWS::Region"},"eu-central-1"]},{"Fn::Equals":[{"Ref":"AWS::Region"},"cn-north-1"]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if want := decodeJSON(t, []byte(tt.want)); !reflect.DeepEqual(tt.got, want) {
				t.Errorf("got %#v, want %s", tt.got, tt.want)
			}
		})
	}
}

func TestParseYAML(t *testing.T) {
	tests := []struct {
		name string
		yaml string // the value of key v
		want string // its JSON form
	}{
		{"Ref", `!Ref Bucket`, `{"Ref":"Bucket"}`},
		{"Ref pseudo parameter", `!Ref AWS::Region`, `{"Ref":"AWS::Region"}`},
		{"GetAtt scalar", `!GetAtt Db.Endpoint.Address`, `{"Fn::GetAtt":["Db","Endpoint.Address"]}`},
		{"GetAtt sequence", `!GetAtt [Db, !Ref Attr]`, `{"Fn::GetAtt":["Db",{"Ref":"Attr"}]}`},
		{"Sub scalar", `!Sub "arn:${AWS::Partition}:s3:::${B}"`, `{"Fn::Sub":"arn:${AWS::Partition}:s3:::${B}"}`},
		{"Sub with variables", `!Sub ["${X}-a", {X: !Ref Y}]`, `{"Fn::Sub":["${X}-a",{"X":{"Ref":"Y"}}]}`},
		{"Join", `!Join ["", [a, !Ref B]]`, `{"Fn::Join":["",["a",{"Ref":"B"}]]}`},
		{"If", `!If [C, 1, !Ref AWS::NoValue]`, `{"Fn::If":["C",1,{"Ref":"AWS::NoValue"}]}`},
		{"Equals", `!Equals [!Ref P, "true"]`, `{"Fn::Equals":[{"Ref":"P"},"true"]}`},
		{"Not", `!Not [!Condition C]`, `{"Fn::Not":[{"Condition":"C"}]}`},
		{"And", `!And [!Condition A, !Condition B]`, `{"Fn::And":[{"Condition":"A"},{"Condition":"B"}]}`},
		{"Or", `!Or [!Condition A, !Equals [a, b]]`, `{"Fn::Or":[{"Condition":"A"},{"Fn::Equals":["a","b"]}]}`},
		{"Condition", `!Condition IsProd`, `{"Condition":"IsProd"}`},
		{"FindInMap", `!FindInMap [M, !Ref AWS::Region, Ami]`, `{"Fn::FindInMap":["M",{"Ref":"AWS::Region"},"Ami"]}`},
		{"Select with GetAZs", `!Select [0, !GetAZs ""]`, `{"Fn::Select":[0,{"Fn::GetAZs":""}]}`},
		{"GetAZs empty", `!GetAZs`, `{"Fn::GetAZs":""}`},
		{"Split", `!Split [",", !Ref L]`, `{"Fn::Split":[",",{"Ref":"L"}]}`},
		{"Base64 keeps text", `!Base64 123`, `{"Fn::Base64":"123"}`},
		{"ImportValue", `!ImportValue {"Fn::Sub": "${N}-Vpc"}`, `{"Fn::ImportValue":{"Fn::Sub":"${N}-Vpc"}}`},
		{"Cidr", `!Cidr [!Ref Block, 6, 5]`, `{"Fn::Cidr":[{"Ref":"Block"},6,5]}`},
		{"Transform", `!Transform {Name: AWS::Include, Parameters: {Location: s3://b/k}}`,
			`{"Fn::Transform":{"Name":"AWS::Include","Parameters":{"Location":"s3://b/k"}}}`},
		{"Length", `!Length [a, b]`, `{"Fn::Length":["a","b"]}`},
		{"ToJsonString", `!ToJsonString {a: 1}`, `{"Fn::ToJsonString":{"a":1}}`},
		{"block sequence under a tag", "!Join\n  - '-'\n  - - a\n    - b", `{"Fn::Join":["-",["a","b"]]}`},
		{"date stays a string", `2010-09-09`, `"2010-09-09"`},
		{"timestamp stays a string", `2001-12-14t21:59:43.10-05:00`, `"2001-12-14t21:59:43.10-05:00"`},
		{"integer", `42`, `42`},
		{"negative float", `-1.50`, `-1.50`},
		{"exponent", `1e3`, `1e3`},
		{"big integer keeps every digit", `123456789012345678901234567890`, `123456789012345678901234567890`},
		{"hex", `0x1F`, `31`},
		{"octal", `0o17`, `15`},
		{"underscores", `1_000`, `1000`},
		{"plus sign", `+1.5`, `1.5`},
		{"leading dot", `.5`, `0.5`},
		{"infinity stays text", `.inf`, `".inf"`},
		{"quoted number", `"5"`, `"5"`},
		{"explicit str", `!!str 5`, `"5"`},
		{"explicit int", `!!int "7"`, `7`},
		{"booleans", `[true, false, "true"]`, `[true,false,"true"]`},
		{"yes is a string", `yes`, `"yes"`},
		{"null", `[null, ~, ]`, `[null,null]`},
		{"keys are strings", `{1: a, true: b, 2010-09-09: c, null: d}`, `{"1":"a","true":"b","2010-09-09":"c","null":"d"}`},
		{"literal block", "|\n  line 1\n  line 2\n", `"line 1\nline 2\n"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := Parse([]byte("v: " + tt.yaml + "\n"))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if want := decodeJSON(t, []byte(tt.want)); !reflect.DeepEqual(tpl["v"], want) {
				t.Errorf("got %#v, want %s", tpl["v"], tt.want)
			}
		})
	}
}

func TestParseJSON(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{"object", `{"a": [1, 2.5, true, null, "x"]}`, `{"a":[1,2.5,true,null,"x"]}`},
		{"byte order mark", "\xEF\xBB\xBF{\"a\": 1}", `{"a":1}`},
		{"YAML flow mapping", `{a: !Ref B}`, `{"a":{"Ref":"B"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := Parse([]byte(tt.body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if want := decodeJSON(t, []byte(tt.want)); !reflect.DeepEqual(any(tpl), want) {
				t.Errorf("got %#v, want %s", tpl, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string // part of the error
	}{
		{"empty", "", "template is empty"},
		{"comments only", "# nothing\n", "template is empty"},
		{"invalid JSON", `{"a": [1, 2}`, "template is not valid JSON"},
		{"JSON with trailing data", `{"a": 1} {"b": 2}`, "template is not valid JSON: unexpected data after the top-level object"},
		{"invalid YAML", "a: [1, 2\nb: c", "template is not valid YAML"},
		{"top level sequence", "- a\n- b\n", "template's top level is not a mapping"},
		{"top level JSON array", `[{"a": 1}]`, "template's top level is not a mapping"},
		{"top level scalar", "hello", "template's top level is not a mapping"},
		{"unknown tag", "a: !Reff X\n", "line 1: unknown tag !Reff"},
		{"unknown tag deep", "a:\n  b:\n    - !Foo [1]\n", "line 3: unknown tag !Foo"},
		{"GetAtt without attribute", "a: !GetAtt Db\n", `line 1: !GetAtt "Db" is not Resource.Attribute`},
		{"duplicate key", "a: 1\na: 2\n", `line 2: duplicate key "a"`},
		{"alias", "a: &x 1\nb: *x\n", "line 2: YAML aliases (*x) are not supported"},
		{"alias as key", "a: &x k\n*x : 2\n", "line 2: YAML aliases (*x) are not supported"},
		{"merge key", "a: &x {k: 1}\nb:\n  <<: {k: 2}\n", "line 3: YAML merge keys (<<) are not supported"},
		{"binary", "a: !!binary aGVsbG8=\n", "line 1: tag !!binary is not supported"},
		{"set", "a: !!set {x: null}\n", "line 1: tag !!set is not supported"},
		{"sequence as key", "? [a]\n: b\n", "line 1: a mapping key must be a string"},
		{"tagged key", "!Ref a: b\n", "line 1: a mapping key must be a string, not !Ref"},
		{"bad explicit int", "a: !!int abc\n", "line 1:"},
		{"two documents", "a: 1\n---\nb: 2\n", "template has more than one YAML document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := Parse([]byte(tt.body))
			if err == nil {
				t.Fatalf("Parse = %#v, want an error containing %q", tpl, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, body := range fixtureTemplates(f) {
		f.Add(body)
	}
	f.Add([]byte("v: !GetAtt [a, b]\nw: !Sub x\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		tpl, err := Parse(body)
		if err != nil {
			return
		}
		_, _ = Resources(tpl)
		_, _ = Parameters(tpl)
		encoded, err := json.Marshal(tpl)
		if err != nil {
			t.Fatalf("the result does not encode as JSON: %v", err)
		}
		if back := decodeJSON(t, encoded); !reflect.DeepEqual(back, any(tpl)) {
			t.Fatalf("JSON round trip changed %#v into %#v", tpl, back)
		}
	})
}
