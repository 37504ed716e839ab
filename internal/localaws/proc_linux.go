package localaws

import "syscall"

// childProcAttr puts the child in its own process group, so Stop can kill
// the group, and has the kernel kill it if we die first. Pdeathsig fires
// when the OS thread that started the child exits; Go ends a thread only
// when a goroutine locked to it (runtime.LockOSThread) returns, so do not
// start dynalite from such a goroutine.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
