package config

import (
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	env := map[string]string{
		"TABLE_NAME": "snapshots", "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:1:stateMachine:s",
		"MAX_SNAPSHOTS_PER_STACK": "-1", "LOCK_GRACE_SECONDS": "60", "DEPLOYMENT_ACCOUNT_ID": "123456789012",
	}
	var cfg API
	if err := Load(&cfg, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if cfg.TableName != "snapshots" || cfg.SnapshotLimit != -1 || cfg.LockGraceSeconds != 60 || cfg.DeploymentAccountID != "123456789012" || cfg.TenantRoleName != "" {
		t.Fatalf("cfg = %+v", cfg)
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	env := map[string]string{"TABLE_NAME": "snapshots", "FIRST_WAIT_SECONDS": "five", "REBOOT_INSTANCES": "maybe"}
	var cfg Workflow
	err := Load(&cfg, func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{`FIRST_WAIT_SECONDS="five" is not an integer`, "MAX_WAIT_SECONDS is not set", `REBOOT_INSTANCES="maybe" is not true or false`, "DEPLOYMENT_ACCOUNT_ID is not set"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestNames(t *testing.T) {
	if got := strings.Join(Names(Workflow{}), ","); got != "TABLE_NAME,FIRST_WAIT_SECONDS,MAX_WAIT_SECONDS,BUSY_LIMIT_SECONDS,REBOOT_INSTANCES,DEPLOYMENT_ACCOUNT_ID,TENANT_ROLE_NAME" {
		t.Fatalf("names = %s", got)
	}
}
