// Package functions_test measures the Lambda binaries themselves: each
// function's bootstrap runs under the Lambda runtime interface emulator,
// as it runs on AWS, and is timed from process start to its first answer.
package functions_test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// BenchmarkColdStart reports, per function, the time from starting the
// emulator with a fresh bootstrap to the answer of its first invocation
// (p50 and max over the runs), and the p50 of warm invocations after it.
// The api function answers an unknown path (no AWS call); the workflow
// function an unknown task. `make bench` installs the emulator in bin/ and
// sets STACKSNAP_RIE.
func BenchmarkColdStart(b *testing.B) {
	rie := os.Getenv("STACKSNAP_RIE")
	if rie == "" {
		b.Fatal("STACKSNAP_RIE is not set: run `make bench`, which installs aws-lambda-rie")
	}
	for _, fn := range []struct{ name, event, answer string }{
		{"api", `{"httpMethod": "GET", "path": "/nowhere", "requestContext": {"identity": {"accountId": "123456789012"}}}`, `"statusCode":404`},
		{"workflow", `{"task": "Nothing", "input": {}}`, `unknown task \"Nothing\"`},
	} {
		b.Run(fn.name, func(b *testing.B) {
			bootstrap := filepath.Join(b.TempDir(), "bootstrap")
			build := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", bootstrap, "./"+fn.name)
			build.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := build.CombinedOutput(); err != nil {
				b.Fatalf("build: %v\n%s", err, out)
			}
			var cold, warm []time.Duration
			for b.Loop() {
				c, w := invokeFresh(b, rie, bootstrap, fn.event, fn.answer)
				cold, warm = append(cold, c), append(warm, w...)
			}
			b.ReportMetric(ms(percentile(cold, 50)), "cold-p50-ms")
			b.ReportMetric(ms(percentile(cold, 100)), "cold-max-ms")
			b.ReportMetric(ms(percentile(warm, 50)), "warm-p50-ms")
		})
	}
}

// invokeFresh starts the emulator on bootstrap, invokes it once cold and
// ten times warm, and stops it.
func invokeFresh(b *testing.B, rie, bootstrap, event, answer string) (time.Duration, []time.Duration) {
	emulator, runtimeAPI := freeAddr(b), freeAddr(b)
	start := time.Now()
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", emulator, "--runtime-api-address", runtimeAPI, "--log-level", "error", bootstrap)
	cmd.Env = append(os.Environ(),
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=dummy", "AWS_SECRET_ACCESS_KEY=dummy",
		"TABLE_NAME=t", "STATE_MACHINE_ARN=arn:aws:states:us-east-1:123456789012:stateMachine:s",
		"MAX_SNAPSHOTS_PER_STACK=32", "LOCK_GRACE_SECONDS=120", "DEPLOYMENT_ACCOUNT_ID=123456789012",
		"FIRST_WAIT_SECONDS=15", "MAX_WAIT_SECONDS=3600", "BUSY_LIMIT_SECONDS=21600", "REBOOT_INSTANCES=false")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	url := "http://" + emulator + "/2015-03-31/functions/function/invocations"
	var cold time.Duration
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if body, err := invoke(url, event); err == nil {
			cold = time.Since(start)
			if !bytes.Contains(body, []byte(answer)) {
				b.Fatalf("first answer %s, want it to contain %s", body, answer)
			}
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the emulator never answered")
		}
	}
	var warm []time.Duration
	for range 10 {
		t0 := time.Now()
		if _, err := invoke(url, event); err != nil {
			b.Fatal(err)
		}
		warm = append(warm, time.Since(t0))
	}
	return cold, warm
}

func invoke(url, event string) ([]byte, error) {
	res, err := http.Post(url, "application/json", bytes.NewBufferString(event))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(res.Body)
	if res.StatusCode != 200 {
		return nil, fmt.Errorf("status %d: %s", res.StatusCode, body.String())
	}
	return body.Bytes(), nil
}

func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func percentile(d []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)*p/100]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
