package samtemplate

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"testing"

	"github.com/stacksnap/stacksnap/internal/config"
)

const repo = "../.."

// functions names, for each function of template.yaml, its main package
// and the configuration it reads.
var functions = map[string]struct {
	dir    string
	config any
}{
	"ApiFunction":      {"functions/api", config.API{}},
	"WorkflowFunction": {"functions/workflow", config.Workflow{}},
	"EventsFunction":   {"functions/events", config.Events{}},
}

func load(t *testing.T) *Template {
	t.Helper()
	tpl, err := Load(filepath.Join(repo, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func TestEveryFunctionIsKnown(t *testing.T) {
	var got, want []string
	for _, fn := range load(t).Functions() {
		got = append(got, fn.LogicalID)
	}
	for id := range functions {
		want = append(want, id)
	}
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("template functions %v, this test knows %v", got, want)
	}
}

func TestFunctionsBuildWithMakefile(t *testing.T) {
	for _, fn := range load(t).Functions() {
		t.Run(fn.LogicalID, func(t *testing.T) {
			if fn.Metadata["BuildMethod"] != "makefile" {
				t.Fatalf("BuildMethod = %v, want makefile", fn.Metadata["BuildMethod"])
			}
			codeURI, _ := fn.Properties["CodeUri"].(string)
			if _, err := os.Stat(filepath.Join(repo, codeURI, "Makefile")); err != nil {
				t.Fatalf("CodeUri %q has no Makefile: %v", codeURI, err)
			}
			if _, err := os.Stat(filepath.Join(repo, functions[fn.LogicalID].dir, "main.go")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestBuildTargetsMakeArm64Bootstraps runs each build-<LogicalId> target as
// `sam build` does, with ARTIFACTS_DIR, and checks what it makes. One at a
// time: on a cold cache, parallel builds would each compile the SDK.
func TestBuildTargetsMakeArm64Bootstraps(t *testing.T) {
	for _, fn := range load(t).Functions() {
		t.Run(fn.LogicalID, func(t *testing.T) {
			artefacts := t.TempDir()
			cmd := exec.Command("make", "-s", "build-"+fn.LogicalID, "ARTIFACTS_DIR="+artefacts)
			cmd.Dir = repo
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("make build-%s: %v\n%s", fn.LogicalID, err, out)
			}
			f, err := elf.Open(filepath.Join(artefacts, "bootstrap"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Machine != elf.EM_AARCH64 {
				t.Fatalf("bootstrap is for %v, want arm64 (provided.al2023 on arm64)", f.Machine)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Fatal("bootstrap is dynamically linked; provided.al2023 needs CGO_ENABLED=0")
				}
			}
		})
	}
}

func TestEnvironmentCoversConfig(t *testing.T) {
	tpl := load(t)
	for _, fn := range tpl.Functions() {
		t.Run(fn.LogicalID, func(t *testing.T) {
			env := tpl.Environment(fn)
			reads := config.Names(functions[fn.LogicalID].config)
			for _, name := range reads {
				if _, ok := env[name]; !ok {
					t.Errorf("the function reads %s, the template does not set it", name)
				}
			}
			for name := range env {
				if !slices.Contains(reads, name) {
					t.Errorf("the template sets %s, the function does not read it", name)
				}
			}
		})
	}
}

var placeholder = regexp.MustCompile(`\$\{([A-Za-z0-9_.:-]+)\}`)

func TestStateMachineDefinitions(t *testing.T) {
	machines := load(t).Resources("AWS::Serverless::StateMachine")
	if len(machines) == 0 {
		t.Fatal("no state machine")
	}
	for _, sm := range machines {
		t.Run(sm.LogicalID, func(t *testing.T) {
			uri, _ := sm.Properties["DefinitionUri"].(string)
			body, err := os.ReadFile(filepath.Join(repo, uri))
			if err != nil {
				t.Fatalf("DefinitionUri: %v", err)
			}
			subs, _ := sm.Properties["DefinitionSubstitutions"].(map[string]any)
			used := map[string]bool{}
			for _, m := range placeholder.FindAllStringSubmatch(string(body), -1) {
				used[m[1]] = true
				if _, ok := subs[m[1]]; !ok {
					t.Errorf("${%s} has no DefinitionSubstitution", m[1])
				}
			}
			for k := range subs {
				if !used[k] {
					t.Errorf("DefinitionSubstitution %s is not used", k)
				}
			}
			if regexp.MustCompile(`QueryLanguage|\{%`).Match(body) {
				t.Error("JSONata: the local interpreter would ignore it; use JSONPath")
			}
		})
	}
}
