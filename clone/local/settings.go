package local

import (
	"fmt"
	"sort"
)

// throwawaySettings are the server settings of every local cluster.
//
// They trade durability for speed, which is right here and never for
// production: a sandbox holds only copies that can be made again from their
// source, and it is deleted when the run ends. If the machine crashes
// mid-run, the cluster is garbage anyway (dbtwin gc removes it), so there is
// nothing for fsync, full-page writes or the WAL to protect.
//
//   - fsync=off, synchronous_commit=off, full_page_writes=off: no waiting on
//     the disk; a crash may corrupt the cluster, and we would throw it away.
//   - wal_level=minimal, max_wal_senders=0, archive_mode=off: no replication
//     or archiving; COPY into a table created or truncated in the same
//     transaction then skips WAL entirely, which is how the clone loads data.
//   - checkpoint_timeout and max_wal_size large: no checkpoints in the middle
//     of a bulk load.
//   - maintenance_work_mem larger than the default: index builds after the
//     data load sort in memory.
//   - listen_addresses=” unless TCP is asked for: the Unix socket in the
//     cluster's private directory is the only way in.
func throwawaySettings(major int) map[string]string {
	s := map[string]string{
		"fsync":                "off",
		"synchronous_commit":   "off",
		"full_page_writes":     "off",
		"wal_level":            "minimal",
		"max_wal_senders":      "0",
		"archive_mode":         "off",
		"checkpoint_timeout":   "1h",
		"max_wal_size":         "8GB",
		"maintenance_work_mem": "256MB",
		"logging_collector":    "off",
		"log_min_messages":     "warning",
	}
	return s
}

// settingArgs renders settings as postgres command-line arguments, sorted so
// the command line is stable.
func settingArgs(settings map[string]string) []string {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, "-c", fmt.Sprintf("%s=%s", k, settings[k]))
	}
	return args
}
