package local

import "syscall"

// sysProcAttr runs a server process in its own process group (so the
// terminal's Ctrl-C reaches dbtwin, which then tears the server down in
// order) as owner when we are root. With dieWithParent, the kernel sends the
// server SIGQUIT (immediate shutdown) if dbtwin itself dies, even by SIGKILL;
// gc then only has files left to remove.
func sysProcAttr(owner *osUser, dieWithParent bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	if owner != nil {
		a.Credential = &syscall.Credential{Uid: uint32(owner.uid), Gid: uint32(owner.gid), NoSetGroups: true}
	}
	if dieWithParent {
		a.Pdeathsig = syscall.SIGQUIT
	}
	return a
}
