package localaws

import (
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// child is a server run as a child process in its own process group (see
// childProcAttr), the end of whose stderr is kept for error reports.
type child struct {
	name   string        // for error messages: dynalite, sfn-server
	grace  time.Duration // how long Stop waits after SIGTERM; 0 kills at once
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has been waited for
	stderr *tailBuffer
	stop   sync.Once
}

// newChild prepares cmd to run as a child: in its own process group, its
// stderr kept and also copied to extra, if not nil. Set up the rest of cmd
// (stdout, environment) before start.
func newChild(name string, cmd *exec.Cmd, extra io.Writer, grace time.Duration) *child {
	c := &child{name: name, grace: grace, cmd: cmd, exited: make(chan struct{}), stderr: &tailBuffer{max: 64 << 10}}
	cmd.Stderr = c.stderr
	if extra != nil {
		cmd.Stderr = io.MultiWriter(c.stderr, extra)
	}
	cmd.SysProcAttr = childProcAttr()
	return c
}

// start starts the process and waits for it in a goroutine, after
// readOutput, if not nil, has read the pipes of cmd to their end (as
// exec.Cmd.Wait requires).
func (c *child) start(readOutput func()) error {
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("localaws: start %s: %w", c.name, err)
	}
	go func() {
		if readOutput != nil {
			readOutput()
		}
		_ = c.cmd.Wait() // the exit status of a killed child says nothing useful
		close(c.exited)
	}()
	return nil
}

// Exited is closed once the process has exited and been waited for.
func (c *child) Exited() <-chan struct{} { return c.exited }

// StderrTail returns the last 64 KiB the process wrote to stderr.
func (c *child) StderrTail() string { return c.stderr.String() }

// abort stops the process of a failed start and returns err, what names
// the server, with the end of its stderr.
func (c *child) abort(what string, err error) error {
	c.Stop()
	return fmt.Errorf("localaws: %s: %w; stderr:\n%s", what, err, c.StderrTail())
}

// Stop ends the process and its group and waits for it to exit: with a
// grace period it sends SIGTERM and kills only once that has passed,
// otherwise it kills at once. It is safe to call more than once.
func (c *child) Stop() {
	c.stop.Do(func() {
		select {
		case <-c.exited: // already gone: its pid may belong to someone else now
			return
		default:
		}
		if c.grace > 0 {
			c.signal(syscall.SIGTERM)
			select {
			case <-c.exited:
				return
			case <-time.After(c.grace):
			}
		}
		c.signal(syscall.SIGKILL)
		<-c.exited
	})
}

// signal sends sig to the process group: a negative pid signals the whole
// group (Setpgid made the child its leader), so nothing the server
// spawned outlives it.
func (c *child) signal(sig syscall.Signal) { _ = syscall.Kill(-c.cmd.Process.Pid, sig) }

// tailBuffer keeps the last max bytes written to it, for error reports.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if extra := b.buf.Len() - b.max; extra > 0 {
		b.buf.Next(extra)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
