// Package config reads a function's settings from its environment, in one
// place, reporting every missing or malformed variable at once.
package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
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
}

// Workflow is the configuration of the workflow function.
type Workflow struct {
	TableName string `env:"TABLE_NAME"`
	// The wait between checks of an artefact starts at FirstWaitSeconds
	// and doubles up to MaxWaitSeconds.
	FirstWaitSeconds int `env:"FIRST_WAIT_SECONDS"`
	MaxWaitSeconds   int `env:"MAX_WAIT_SECONDS"`
}

// Load fills the fields of dst (a pointer to a struct whose fields carry
// `env` tags) from getenv. Every variable is required.
func Load(dst any, getenv func(string) string) error {
	v := reflect.ValueOf(dst).Elem()
	var errs []error
	for i := range v.NumField() {
		field := v.Type().Field(i)
		name := field.Tag.Get("env")
		raw := getenv(name)
		if raw == "" {
			errs = append(errs, fmt.Errorf("%s is not set", name))
			continue
		}
		switch field.Type.Kind() {
		case reflect.String:
			v.Field(i).SetString(raw)
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
	return errors.Join(errs...)
}

// Names lists the environment variables a configuration struct reads.
func Names(cfg any) []string {
	t := reflect.TypeOf(cfg)
	names := make([]string, t.NumField())
	for i := range t.NumField() {
		names[i] = t.Field(i).Tag.Get("env")
	}
	return names
}
