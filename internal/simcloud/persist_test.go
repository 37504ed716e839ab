package simcloud

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stacksnap/stacksnap/internal/snapshot"
)

func TestPersistence(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state") // New makes the folder
	clock := newFakeClock()
	opts := Options{StatePath: filepath.Join(dir, "cloud.json"), Clock: clock.Now}

	before := newCloud(t, opts)
	loaded := loadFixtures(t, before)
	allKindsStack, err := before.AddStack(account, "all-kinds", []byte(allKinds))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{cloud: before, clock: clock, stack: allKindsStack}
	volume := f.request(t, "snap-1", "Disk")
	volumeData, err := f.snapshotter(t, "AWS::EC2::Volume").Start(ctx, volume)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.snapshotter(t, "AWS::EC2::Instance").Start(ctx, f.request(t, "snap-1", "Server")); err != nil {
		t.Fatal(err)
	}
	if err := before.SetBehaviour(account, "all-kinds", "Db", Behaviour{ThrottleStarts: 2}); err != nil {
		t.Fatal(err)
	}
	db := f.request(t, "snap-1", "Db")
	if _, err := f.snapshotter(t, "AWS::RDS::DBInstance").Start(ctx, db); err == nil {
		t.Fatal("first Start of Db was not throttled")
	}
	if err := before.SetStackStatus(account, "Config", "UPDATE_IN_PROGRESS"); err != nil {
		t.Fatal(err)
	}
	webapp, err := before.Stack(ctx, account, "webapp")
	if err != nil {
		t.Fatal(err)
	}
	if err := before.DeleteStack(account, "webapp"); err != nil {
		t.Fatal(err)
	}

	after := newCloud(t, opts)
	f.cloud = after

	t.Run("artefacts survive", func(t *testing.T) {
		if got, want := after.Artefacts(), before.Artefacts(); !reflect.DeepEqual(got, want) {
			t.Errorf("artefacts after restart = %+v, want %+v", got, want)
		}
	})
	t.Run("stack status survives", func(t *testing.T) {
		s, err := after.Stack(ctx, account, "Config")
		if err != nil {
			t.Fatal(err)
		}
		if s.Status != "UPDATE_IN_PROGRESS" || s.ID != loaded[0].ID {
			t.Errorf("Config after restart = %+v", s)
		}
	})
	t.Run("deleted stack stays deleted", func(t *testing.T) {
		_, err := after.Stack(ctx, account, "webapp")
		wantError(t, err, snapshot.CodeStackNotFound, "The Stack (webapp) could not be found.")
	})
	t.Run("reload keeps ids and makes deleted stacks again", func(t *testing.T) {
		for i, s := range loadFixtures(t, after) {
			switch {
			case s.Name == "webapp":
				if s.ID == webapp.ID || s.Status != "CREATE_COMPLETE" {
					t.Errorf("webapp made again = %+v, want a new id", s)
				}
			case s.ID != loaded[i].ID:
				t.Errorf("%s id = %s, was %s", s.Name, s.ID, loaded[i].ID)
			}
		}
	})
	t.Run("pending artefact completes", func(t *testing.T) {
		s := f.snapshotter(t, "AWS::EC2::Volume")
		if p, err := s.Check(ctx, volume, volumeData); err != nil || !reflect.DeepEqual(p, snapshot.Progress{}) {
			t.Errorf("Check = %+v, %v; want pending", p, err)
		}
		clock.Advance(3 * time.Second)
		if p, err := s.Check(ctx, volume, volumeData); err != nil || !p.Done {
			t.Errorf("Check = %+v, %v; want done", p, err)
		}
	})
	t.Run("throttling counts on", func(t *testing.T) {
		s := f.snapshotter(t, "AWS::RDS::DBInstance")
		var throttled *snapshot.ThrottlingError
		if _, err := s.Start(ctx, db); !errors.As(err, &throttled) {
			t.Errorf("second Start error = %v, want throttled", err)
		}
		if _, err := s.Start(ctx, db); err != nil {
			t.Errorf("third Start: %v", err)
		}
	})
	t.Run("idempotent start finds the artefact made before", func(t *testing.T) {
		again, err := f.snapshotter(t, "AWS::EC2::Volume").Start(ctx, volume)
		if err != nil || !reflect.DeepEqual(again, volumeData) {
			t.Errorf("Start = %v, %v; want %v", again, err, volumeData)
		}
	})
	t.Run("delete is saved", func(t *testing.T) {
		if err := f.snapshotter(t, "AWS::EC2::Volume").Delete(ctx, account, volumeData); err != nil {
			t.Fatal(err)
		}
		for _, a := range newCloud(t, opts).Artefacts() {
			if a.ID == volumeData["snapshot_id"] {
				t.Errorf("deleted artefact %s is back after a restart", a.ID)
			}
		}
	})
	t.Run("no temporary files left", func(t *testing.T) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 {
			t.Errorf("state folder holds %d files, want only cloud.json", len(entries))
		}
	})
}

func TestCorruptState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cloud.json")
	if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(Options{StatePath: path})
	if err == nil || !strings.HasPrefix(err.Error(), "read simcloud state "+path) {
		t.Errorf("New error = %v, want it to name the state file", err)
	}
}
