//go:build unix && !linux

package localaws

import "syscall"

// childProcAttr puts the child in its own process group, so Stop can kill
// the group. Outside Linux there is no parent-death signal: a child of a
// crashed parent lives on until killed.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
