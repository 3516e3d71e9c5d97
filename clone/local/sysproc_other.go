//go:build !linux

package local

import "syscall"

// sysProcAttr runs a server process in its own process group, as owner when
// we are root. Outside Linux there is no parent-death signal: a server left
// by a crashed run is stopped by `dbtwin gc`.
func sysProcAttr(owner *osUser, _ bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	if owner != nil {
		a.Credential = &syscall.Credential{Uid: uint32(owner.uid), Gid: uint32(owner.gid), NoSetGroups: true}
	}
	return a
}
