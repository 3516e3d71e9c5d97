package clone

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Foreign keys the clone takes as valid.
//
// pg_restore adds every foreign key with ALTER TABLE ... ADD CONSTRAINT,
// which runs a query joining the referencing table against the referenced
// one to check every row: on the 856 MB fixture its ten keys take about
// 8 % of the whole clone's CPU time, and on two cores CPU time is the
// clone's wall time. A clone does not need that check for a key the source
// has validated, when neither table was masked: the rows are the source's
// own, read in one snapshot, and PostgreSQL keeps a validated key true in
// every snapshot (its triggers lock the referenced row, and check the
// referencing rows of a deleted one against the newest snapshot). So such a
// key is added NOT VALID (no check) and then marked validated in
// pg_constraint, as ALTER TABLE ... VALIDATE CONSTRAINT does once its check
// passes. The clone's catalog then says what the source's says, and
// pg_dump --schema-only of the two stays the same.
//
// The check still runs, through pg_restore, for:
//   - a key that is NOT VALID on the source (pg_restore keeps it so);
//   - a key with a masked table on either side: a masking rule that breaks
//     a key must fail the clone, not hide in it;
//   - a key on or referencing a partitioned table (PostgreSQL 15 refuses
//     NOT VALID there, and the key has a constraint row per partition);
//   - every key when the target role is not a superuser, who alone may
//     write pg_constraint (a server sandbox on a managed service), or when
//     Options.ValidateForeignKeys asks for it.
//
// What it gives up: a source whose rows break a key it calls validated
// (one written with session_replication_role = replica, or with the key's
// triggers disabled) clones as it is, where pg_restore would fail.

// foreignKey is a foreign key of the source that the clone may add without
// checking its rows (see above).
type foreignKey struct {
	oid      uint32 // the constraint's OID on the source: its archive entry's
	from, to uint32 // referencing and referenced tables' OIDs on the source
	table    string // referencing table, quoted and qualified
	name     string // the constraint's name
	def      string // pg_get_constraintdef, every name qualified
}

// listForeignKeys returns the source's validated foreign keys between two
// plain tables, with definitions whose names are all schema-qualified (the
// query runs with an empty search_path, as pg_dump's do). conn is inside the
// snapshot transaction; its search_path is put back afterwards.
func listForeignKeys(ctx context.Context, conn *pgx.Conn, major int) ([]foreignKey, error) {
	if major < 11 {
		// No conparentid before 11: those sources go through pg_restore's check.
		return nil, nil
	}
	var saved string
	if err := conn.QueryRow(ctx, `SELECT pg_catalog.current_setting('search_path'),
		pg_catalog.set_config('search_path', '', true)`).Scan(&saved, new(string)); err != nil {
		return nil, fmt.Errorf("list foreign keys: %w", err)
	}
	rows, err := conn.Query(ctx, `
SELECT c.oid, c.conrelid, c.confrelid,
       pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(r.relname),
       c.conname, pg_catalog.pg_get_constraintdef(c.oid)
FROM pg_catalog.pg_constraint c
JOIN pg_catalog.pg_class r ON r.oid = c.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace
JOIN pg_catalog.pg_class f ON f.oid = c.confrelid
WHERE c.contype = 'f' AND c.convalidated AND c.conparentid = 0
  AND r.relkind = 'r' AND f.relkind = 'r'
ORDER BY c.oid`)
	if err != nil {
		return nil, fmt.Errorf("list foreign keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (foreignKey, error) {
		var k foreignKey
		err := row.Scan(&k.oid, &k.from, &k.to, &k.table, &k.name, &k.def)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("list foreign keys: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_catalog.set_config('search_path', $1, true)`, saved); err != nil {
		return nil, fmt.Errorf("list foreign keys: restore search_path: %w", err)
	}
	return keys, nil
}

// trustedKeys returns the keys whose two tables were both copied unmasked.
func trustedKeys(keys []foreignKey, tables []*table) []foreignKey {
	plain := make(map[uint32]bool, len(tables))
	for _, t := range tables {
		plain[t.oid] = !t.masked
	}
	var out []foreignKey
	for _, k := range keys {
		if plain[k.from] && plain[k.to] {
			out = append(out, k)
		}
	}
	return out
}

// canWriteCatalog reports whether conn's role is a superuser, who may mark
// a constraint validated in pg_constraint.
func canWriteCatalog(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var super bool
	err := conn.QueryRow(ctx, `SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user`).Scan(&super)
	return super, err
}

// tocEntry matches a line of pg_restore --list that names an archive entry:
// "3398; 2606 16420 FK CONSTRAINT public orders orders_customer_id_fkey
// owner" — dump ID; catalog table OID, object OID, then the entry's type.
var tocEntry = regexp.MustCompile(`^\d+; \d+ (\d+) (.*)$`)

// withoutKeys returns pg_restore's list of archive entries (list) with the
// FK CONSTRAINT entries of keys commented out, for pg_restore --use-list,
// and how many it left out.
func withoutKeys(list []byte, keys []foreignKey) ([]byte, int) {
	skip := make(map[uint32]bool, len(keys))
	for _, k := range keys {
		skip[k.oid] = true
	}
	var out bytes.Buffer
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(list))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := tocEntry.FindStringSubmatch(line); m != nil && strings.HasPrefix(m[2], "FK CONSTRAINT ") {
			if oid, err := strconv.ParseUint(m[1], 10, 32); err == nil && skip[uint32(oid)] {
				out.WriteString(";")
				n++
			}
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	return out.Bytes(), n
}

// postDataList writes, next to archive, the list of its entries without
// those of keys, and returns its path for restoreSection; "" when no entry
// is left out (the whole archive is restored).
func (t tools) postDataList(ctx context.Context, archive string, keys []foreignKey) (string, error) {
	if len(keys) == 0 {
		return "", nil
	}
	var list bytes.Buffer
	if err := t.runTool(ctx, "pg_restore", []string{"--list", archive}, conninfo{}, nil, &list, toolPGOptions); err != nil {
		return "", fmt.Errorf("list schema archive: %w", err)
	}
	out, n := withoutKeys(list.Bytes(), keys)
	if n != len(keys) {
		// The archive and the catalog disagree (they come from one
		// snapshot, so they should not): let pg_restore do it all.
		t.log.Warn("foreign keys not found in the schema archive: the clone checks them all", "found", n, "want", len(keys))
		return "", nil
	}
	path := filepath.Join(filepath.Dir(archive), "post-data.list")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return "", fmt.Errorf("write list of post-data entries: %w", err)
	}
	return path, nil
}

// addTrustedKeys adds keys to the database conn is connected to without
// checking its rows, in one transaction: ADD CONSTRAINT ... NOT VALID, then
// pg_constraint.convalidated set as VALIDATE CONSTRAINT would (updating the
// catalog row also invalidates the table's cached foreign keys). The
// referenced tables' unique indexes must exist (post-data built them).
func addTrustedKeys(ctx context.Context, conn *pgx.Conn, keys []foreignKey) error {
	if len(keys) == 0 {
		return nil
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("add foreign keys: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	for _, k := range keys {
		add := "ALTER TABLE ONLY " + k.table + " ADD CONSTRAINT " + pgx.Identifier{k.name}.Sanitize() + " " + k.def + " NOT VALID"
		if _, err := tx.Exec(ctx, add); err != nil {
			return fmt.Errorf("add foreign key %q on %s: %w", k.name, k.table, err)
		}
		tag, err := tx.Exec(ctx, `UPDATE pg_catalog.pg_constraint SET convalidated = true
			WHERE conrelid = $1::regclass AND conname = $2 AND contype = 'f' AND NOT convalidated`,
			k.table, k.name)
		if err != nil {
			return fmt.Errorf("mark foreign key %q on %s valid: %w", k.name, k.table, err)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("mark foreign key %q on %s valid: %d catalog rows matched, want 1", k.name, k.table, tag.RowsAffected())
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("add foreign keys: %w", err)
	}
	return nil
}
