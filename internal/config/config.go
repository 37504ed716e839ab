// Package config reads a function's settings from its environment, in one
// place, reporting every missing or malformed variable at once.
package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// API is the configuration of the api function.
type API struct {
	TableName       string `env:"TABLE_NAME"`
	StateMachineARN string `env:"STATE_MACHINE_ARN"`
	// SnapshotLimit is max_snapshots_per_stack: -1 no limit, 0 none.
	SnapshotLimit int `env:"MAX_SNAPSHOTS_PER_STACK"`
	// LockGraceSeconds is how long a stack lock may point at missing work
	// before it is taken to be left by a crash.
	LockGraceSeconds int `env:"LOCK_GRACE_SECONDS"`
	Accounts
}

// Accounts says which AWS accounts the deployment serves.
type Accounts struct {
	DeploymentAccountID string `env:"DEPLOYMENT_ACCOUNT_ID"`
	// TenantRoleName is the role assumed in other tenants' accounts; empty
	// means only the deployment's own account is served.
	TenantRoleName string `env:"TENANT_ROLE_NAME,optional"`
}

// Workflow is the configuration of the workflow function.
type Workflow struct {
	TableName string `env:"TABLE_NAME"`
	// The wait between checks of an artefact starts at FirstWaitSeconds
	// and doubles up to MaxWaitSeconds.
	FirstWaitSeconds int `env:"FIRST_WAIT_SECONDS"`
	MaxWaitSeconds   int `env:"MAX_WAIT_SECONDS"`
	// BusyLimitSeconds is how long a resource may stay busy (e.g. an RDS
	// instance in its backup window) before its snapshot fails.
	BusyLimitSeconds int `env:"BUSY_LIMIT_SECONDS"`
	// RebootInstances asks EC2 to reboot instances while their AMI is made.
	RebootInstances bool `env:"REBOOT_INSTANCES"`
	Accounts
}

// Events is the configuration of the events function.
type Events struct {
	TableName       string `env:"TABLE_NAME"`
	StateMachineARN string `env:"STATE_MACHINE_ARN"`
}

// Load fills the fields of dst (a pointer to a struct whose fields carry
// `env:"NAME"` tags, or embed such structs) from getenv. Every variable is
// required unless its tag says `optional`.
func Load(dst any, getenv func(string) string) error {
	return errors.Join(load(reflect.ValueOf(dst).Elem(), getenv)...)
}

func load(v reflect.Value, getenv func(string) string) []error {
	var errs []error
	for i := range v.NumField() {
		field := v.Type().Field(i)
		if field.Anonymous {
			errs = append(errs, load(v.Field(i), getenv)...)
			continue
		}
		name, optional := tag(field)
		raw := getenv(name)
		if raw == "" {
			if !optional {
				errs = append(errs, fmt.Errorf("%s is not set", name))
			}
			continue
		}
		switch field.Type.Kind() {
		case reflect.String:
			v.Field(i).SetString(raw)
		case reflect.Bool:
			b, err := strconv.ParseBool(raw)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q is not true or false", name, raw))
				continue
			}
			v.Field(i).SetBool(b)
		case reflect.Int:
			n, err := strconv.Atoi(raw)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q is not an integer", name, raw))
				continue
			}
			v.Field(i).SetInt(int64(n))
		default:
			panic("config: unsupported field type " + field.Type.String())
		}
	}
	return errs
}

func tag(field reflect.StructField) (name string, optional bool) {
	name, opts, _ := strings.Cut(field.Tag.Get("env"), ",")
	return name, opts == "optional"
}

// Names lists the environment variables a configuration struct reads.
func Names(cfg any) []string {
	return names(reflect.TypeOf(cfg))
}

func names(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		field := t.Field(i)
		if field.Anonymous {
			out = append(out, names(field.Type)...)
			continue
		}
		name, _ := tag(field)
		out = append(out, name)
	}
	return out
}
