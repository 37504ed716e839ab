package awstest

import (
	"slices"
	"sync"
	"testing"
)

func TestRecorderCheck(t *testing.T) {
	var r Recorder
	var wg sync.WaitGroup
	for _, op := range []string{"sts:AssumeRole", "cloudformation:DescribeStacks", "sts:AssumeRole"} {
		wg.Go(func() { r.Record(op) })
	}
	wg.Wait()

	if got, want := r.Seen(), []string{"cloudformation:DescribeStacks", "sts:AssumeRole"}; !slices.Equal(got, want) {
		t.Errorf("Seen = %v, want %v", got, want)
	}
	tests := []struct {
		name   string
		listed []string
		ok     bool
	}{
		{name: "SameInAnyOrder", listed: []string{"sts:AssumeRole", "cloudformation:DescribeStacks"}, ok: true},
		{name: "ListsUnseen", listed: []string{"sts:AssumeRole", "cloudformation:DescribeStacks", "ec2:CreateImage"}},
		{name: "LacksSeen", listed: []string{"sts:AssumeRole"}},
		{name: "ListsTwice", listed: []string{"sts:AssumeRole", "cloudformation:DescribeStacks", "sts:AssumeRole"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := r.Check("Operations", tt.listed)
			if (err == nil) != tt.ok {
				t.Errorf("Check(%v) = %v, want ok %v", tt.listed, err, tt.ok)
			}
		})
	}
}

func TestRecorderUnseen(t *testing.T) {
	var r Recorder
	if got := r.Unseen([]string{"ec2:CreateImage"}); !slices.Equal(got, []string{"ec2:CreateImage"}) {
		t.Errorf("Unseen before any Record = %v", got)
	}
	r.Record("ec2:CreateImage")
	listed := []string{"rds:DeleteDBSnapshot", "ec2:CreateImage", "ec2:CreateTags"}
	if got, want := r.Unseen(listed), []string{"rds:DeleteDBSnapshot", "ec2:CreateTags"}; !slices.Equal(got, want) {
		t.Errorf("Unseen = %v, want %v", got, want)
	}
}
