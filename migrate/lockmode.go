package migrate

import "strings"

// LockMode is a PostgreSQL table-level lock mode, named as in LOCK TABLE
// and the documentation ("ACCESS EXCLUSIVE"), not as pg_locks spells it.
type LockMode string

// The table-level lock modes, weakest first.
const (
	LockAccessShare          LockMode = "ACCESS SHARE"
	LockRowShare             LockMode = "ROW SHARE"
	LockRowExclusive         LockMode = "ROW EXCLUSIVE"
	LockShareUpdateExclusive LockMode = "SHARE UPDATE EXCLUSIVE"
	LockShare                LockMode = "SHARE"
	LockShareRowExclusive    LockMode = "SHARE ROW EXCLUSIVE"
	LockExclusive            LockMode = "EXCLUSIVE"
	LockAccessExclusive      LockMode = "ACCESS EXCLUSIVE"
)

// lockModes is every mode in strength order (the index is the rank).
var lockModes = [...]LockMode{"", LockAccessShare, LockRowShare, LockRowExclusive, LockShareUpdateExclusive, LockShare, LockShareRowExclusive, LockExclusive, LockAccessExclusive}

// Rank orders lock modes by strength: 1 (ACCESS SHARE) … 8 (ACCESS
// EXCLUSIVE), 0 for an unknown mode. It equals PostgreSQL's LOCKMODE number.
func (m LockMode) Rank() int {
	for i, x := range lockModes {
		if x == m && i > 0 {
			return i
		}
	}
	return 0
}

// Blocks says in plain words what the mode stops other sessions doing.
func (m LockMode) Blocks() string {
	switch m {
	case LockAccessExclusive:
		return "blocks all reads and writes"
	case LockExclusive:
		return "blocks writes and row locks"
	case LockShareRowExclusive, LockShare:
		return "blocks INSERT, UPDATE and DELETE"
	case LockShareUpdateExclusive:
		return "blocks other schema changes and VACUUM, not reads or writes"
	case LockRowExclusive, LockRowShare, LockAccessShare:
		return "blocks only ACCESS EXCLUSIVE (DDL)"
	}
	return ""
}

// lockModeFromPG converts pg_locks' "AccessExclusiveLock" to
// LockAccessExclusive.
func lockModeFromPG(s string) LockMode {
	s = strings.TrimSuffix(s, "Lock")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return LockMode(strings.ToUpper(b.String()))
}

// lockModeFromNumber converts LOCK TABLE's parse-tree mode (1…8).
func lockModeFromNumber(n int32) LockMode {
	if n >= 1 && int(n) < len(lockModes) {
		return lockModes[n]
	}
	return LockAccessExclusive
}

func strongest(a, b LockMode) LockMode {
	if b.Rank() > a.Rank() {
		return b
	}
	return a
}
