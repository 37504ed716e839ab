package localrun

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// BenchmarkCreate measures POST .../snapshots through the whole local
// system (stack lookup, the conditional reservation and the record in
// dynalite, the start of the execution): the latency a client sees before
// its 200. Each iteration snapshots a stack of its own, as one stack takes
// one snapshot at a time.
func BenchmarkCreate(b *testing.B) {
	var urls []string
	for i := range b.N {
		s, err := runner.Cloud.AddStack(runner.Account, fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i), []byte("Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n"))
		if err != nil {
			b.Fatal(err)
		}
		urls = append(urls, runner.SnapshotsURL(s))
	}
	b.ResetTimer()
	for _, url := range urls {
		res, err := http.Post(url, "application/json", strings.NewReader(`{"name": "bench"}`))
		if err != nil {
			b.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatalf("POST: %d", res.StatusCode)
		}
	}
}

// BenchmarkSnapshotToComplete measures a whole snapshot of a stack with
// two volumes, POST to COMPLETE, with artefacts that take 300 ms and
// checks every 50 ms: the overhead of the workflow around the artefacts.
func BenchmarkSnapshotToComplete(b *testing.B) {
	for i := range b.N {
		s, err := runner.Cloud.AddStack(runner.Account, fmt.Sprintf("bench-full-%d-%d", time.Now().UnixNano(), i), []byte(twoVolumes))
		if err != nil {
			b.Fatal(err)
		}
		postAndWait(b, runner.SnapshotsURL(s), true)
	}
}

// BenchmarkLargeStack snapshots a stack of 200 volumes to COMPLETE
// (artefacts of 300 ms, ten resources at a time as the Map allows): the
// workflow's overhead per resource, and that a large plan goes through.
func BenchmarkLargeStack(b *testing.B) {
	var template strings.Builder
	template.WriteString("Resources:\n")
	for i := range 200 {
		fmt.Fprintf(&template, "  Volume%03d:\n    Type: AWS::EC2::Volume\n    Properties: {Size: 1}\n", i)
	}
	for i := range b.N {
		s, err := runner.Cloud.AddStack(runner.Account, fmt.Sprintf("bench-large-%d-%d", time.Now().UnixNano(), i), []byte(template.String()))
		if err != nil {
			b.Fatal(err)
		}
		postAndWait(b, runner.SnapshotsURL(s), true)
	}
}
