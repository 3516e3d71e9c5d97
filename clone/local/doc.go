// Package local is dbtwin's embedded default sandbox: throwaway PostgreSQL
// clusters started from the PostgreSQL binaries already on the machine.
//
// A Cluster lives in a directory of its own under the state directory
// (data directory, Unix socket directory, server log and a registry record
// that names the owning process and run). That record is what makes
// `dbtwin sandbox ls`, `dbtwin sandbox down NAME` and `dbtwin gc` work: a
// cluster whose owner process is gone is garbage and gc stops and removes it.
//
// Clusters are tuned for speed and disposability, never durability (see
// throwawaySettings): they hold copies that can always be made again.
//
// When the calling process runs as root, the server runs as an unprivileged
// OS user (initdb and postgres refuse to run as root): DBTWIN_PG_USER, else
// "postgres", else "nobody".
//
// What it is not for: production servers, or servers that dbtwin did not
// start (that is clone/server). It does not copy data: that is package clone.
package local
