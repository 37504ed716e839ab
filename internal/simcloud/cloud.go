// Package simcloud is a local stand-in for the parts of AWS that stacksnap
// uses: CloudFormation stacks, EBS snapshots, AMIs, RDS snapshots and
// DynamoDB backups. The local runner and the end-to-end tests run the real
// domain against it; its controls (DeleteStack, SetStackStatus,
// SetBehaviour) let a person or a test make the cloud misbehave.
package simcloud

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Options configure a Cloud.
type Options struct {
	// Region is the region of every stack and artefact; us-east-1 if empty.
	Region string
	// StatePath is a JSON file the cloud saves to after every change and
	// loads on start, so that stacks keep their ids and artefacts survive a
	// restart. Empty keeps everything in memory.
	StatePath string
	// Clock tells the time; time.Now if nil.
	Clock func() time.Time
	// ArtefactDuration is how long a new artefact stays pending unless a
	// Behaviour says otherwise; 3s if zero.
	ArtefactDuration time.Duration
}

// Cloud is the simulated cloud. It is safe for concurrent use.
type Cloud struct {
	region   string
	path     string
	clock    func() time.Time
	duration time.Duration

	mu    sync.Mutex
	state state
}

// state is everything the cloud remembers, as it is saved.
type state struct {
	Stacks    []*stack             `json:"stacks"`    // live and deleted, oldest first
	Artefacts map[string]*artefact `json:"artefacts"` // by id
}

// New makes a cloud, loading the state saved at opts.StatePath if there is one.
func New(opts Options) (*Cloud, error) {
	c := &Cloud{
		region:   opts.Region,
		path:     opts.StatePath,
		clock:    opts.Clock,
		duration: opts.ArtefactDuration,
	}
	if c.region == "" {
		c.region = "us-east-1"
	}
	if c.clock == nil {
		c.clock = time.Now
	}
	if c.duration == 0 {
		c.duration = 3 * time.Second
	}
	if err := c.load(); err != nil {
		return nil, err
	}
	if c.state.Artefacts == nil {
		c.state.Artefacts = map[string]*artefact{}
	}
	return c, nil
}

func (c *Cloud) load() error {
	if c.path == "" {
		return nil
	}
	body, err := os.ReadFile(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return os.MkdirAll(filepath.Dir(c.path), 0o755)
	}
	if err != nil {
		return fmt.Errorf("read simcloud state: %w", err)
	}
	if err := json.Unmarshal(body, &c.state); err != nil {
		return fmt.Errorf("read simcloud state %s: %w", c.path, err)
	}
	return nil
}

// save writes the state to StatePath; the caller holds c.mu. It writes a
// temporary file and renames it, so that a crash never leaves half a state.
func (c *Cloud) save() error {
	if c.path == "" {
		return nil
	}
	body, err := json.MarshalIndent(c.state, "", "  ")
	if err != nil {
		return fmt.Errorf("save simcloud state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), filepath.Base(c.path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("save simcloud state: %w", err)
	}
	_, err = tmp.Write(body)
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), c.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save simcloud state: %w", err)
	}
	return nil
}
