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

// Constraints the clone takes as valid.
//
// pg_restore checks every row against every constraint: a CHECK constraint
// (declared in CREATE TABLE, in pre-data) as each row is loaded, a foreign
// key (ALTER TABLE ... ADD CONSTRAINT, in post-data) by a query joining the
// referencing table against the referenced one. On the 856 MB fixture the
// checks of its nine keys between plain tables took 1.9 s (about 8 % of
// the clone's CPU time) and the evaluation of its 22 CHECK constraints
// 3.3 % of the clone's CPU samples; on two cores CPU time is the clone's
// wall time.
//
// A clone does not need those checks for a constraint the source has
// validated, on tables that are not masked: the rows are the source's own,
// read in one snapshot. PostgreSQL keeps a validated CHECK true of every
// row version, and a validated key true in every snapshot (its triggers
// lock the referenced row, and check the referencing rows of a deleted one
// against the newest snapshot). So such a constraint is added NOT VALID
// (no check) and then marked validated in pg_constraint, as ALTER TABLE
// ... VALIDATE CONSTRAINT does once its check passes:
//   - a CHECK constraint is dropped from its table after pre-data, before
//     the rows arrive, and added back before post-data (ADD CONSTRAINT
//     CHECK locks the table against the index builds);
//   - a foreign key's entry is left out of pg_restore's post-data (through
//     a --use-list) and the key is added after post-data has built the
//     referenced table's unique index.
// The clone's catalog then says what the source's says, and pg_dump
// --schema-only of the two stays the same.
//
// The check still runs, through pg_restore, for:
//   - a constraint that is NOT VALID on the source (pg_restore keeps it so);
//   - a constraint with a masked table on either side: a masking rule that
//     breaks a constraint must fail the clone, not hide in it;
//   - a constraint of a table in an inheritance tree or a partitioned one
//     (a constraint row per child; PostgreSQL 15 refuses NOT VALID keys on
//     a partitioned table), and a key referencing a partitioned table;
//   - a domain's CHECK constraints (the input function checks them);
//   - every constraint when the target role is not a superuser, who alone
//     may write pg_constraint (a server sandbox on a managed service), or
//     when Options.ValidateConstraints asks for it.
//
// What it gives up: a source whose rows break a constraint it calls
// validated (rows written with session_replication_role = replica or with
// the key's triggers disabled, a CHECK whose function changed its mind)
// clones as it is, where pg_restore would fail.

// constraint is a validated constraint of the source that the clone may
// add without checking its rows (see above).
type constraint struct {
	kind     byte   // 'c' CHECK, 'f' FOREIGN KEY
	oid      uint32 // the constraint's OID on the source: its archive entry's
	from, to uint32 // the table's OID on the source; a key's referenced table's (0 for a CHECK)
	table    string // the table, quoted and qualified
	name     string // the constraint's name
	def      string // pg_get_constraintdef, every name qualified
}

// listConstraints returns the source's validated CHECK constraints of
// plain tables outside any inheritance tree, and its validated foreign keys
// between two plain tables, with definitions whose names are all
// schema-qualified (the query runs with an empty search_path, as pg_dump's
// do). conn is inside the snapshot transaction; its search_path is put back
// afterwards.
func listConstraints(ctx context.Context, conn *pgx.Conn, major int) ([]constraint, error) {
	if major < 11 {
		// No conparentid before 11: those sources go through pg_restore's checks.
		return nil, nil
	}
	var saved string
	if err := conn.QueryRow(ctx, `SELECT pg_catalog.current_setting('search_path'),
		pg_catalog.set_config('search_path', '', true)`).Scan(&saved, new(string)); err != nil {
		return nil, fmt.Errorf("list constraints: %w", err)
	}
	rows, err := conn.Query(ctx, `
SELECT c.contype::text, c.oid, c.conrelid, c.confrelid,
       pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(r.relname),
       c.conname, pg_catalog.pg_get_constraintdef(c.oid)
FROM pg_catalog.pg_constraint c
JOIN pg_catalog.pg_class r ON r.oid = c.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace
LEFT JOIN pg_catalog.pg_class f ON f.oid = c.confrelid
WHERE c.convalidated AND c.conparentid = 0 AND r.relkind = 'r'
  AND (c.contype = 'f' AND f.relkind = 'r'
    OR c.contype = 'c' AND c.conislocal AND c.coninhcount = 0 AND NOT r.relispartition
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits i WHERE i.inhrelid = r.oid OR i.inhparent = r.oid))
ORDER BY c.oid`)
	if err != nil {
		return nil, fmt.Errorf("list constraints: %w", err)
	}
	cons, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (constraint, error) {
		var k constraint
		var kind string
		err := row.Scan(&kind, &k.oid, &k.from, &k.to, &k.table, &k.name, &k.def)
		k.kind = kind[0]
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("list constraints: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_catalog.set_config('search_path', $1, true)`, saved); err != nil {
		return nil, fmt.Errorf("list constraints: restore search_path: %w", err)
	}
	return cons, nil
}

// trustedConstraints returns those of cons of the given kind whose tables
// were all copied unmasked.
func trustedConstraints(cons []constraint, kind byte, tables []*table) []constraint {
	plain := make(map[uint32]bool, len(tables))
	for _, t := range tables {
		plain[t.oid] = !t.masked
	}
	var out []constraint
	for _, k := range cons {
		if k.kind == kind && plain[k.from] && (k.to == 0 || plain[k.to]) {
			out = append(out, k)
		}
	}
	return out
}

// canWriteCatalog reports whether conn's role is a superuser, who alone may
// write pg_statistic (copyStats) and mark a constraint validated in
// pg_constraint.
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
func withoutKeys(list []byte, keys []constraint) ([]byte, int) {
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
func (t tools) postDataList(ctx context.Context, archive string, keys []constraint) (string, error) {
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

// dropChecks drops checks, CHECK constraints that pre-data created, from
// the database conn is connected to, before the rows are loaded.
func dropChecks(ctx context.Context, conn *pgx.Conn, checks []constraint) error {
	if len(checks) == 0 {
		return nil
	}
	var b strings.Builder
	for _, k := range checks {
		fmt.Fprintf(&b, "ALTER TABLE ONLY %s DROP CONSTRAINT %s;\n", k.table, pgx.Identifier{k.name}.Sanitize())
	}
	// One implicit transaction: all or none.
	if err := execSimple(ctx, conn.PgConn(), b.String()); err != nil {
		return fmt.Errorf("drop CHECK constraints until the rows are loaded: %w", err)
	}
	return nil
}

// addTrusted adds cons to the database conn is connected to without
// checking its rows, in one transaction: ADD CONSTRAINT ... NOT VALID, then
// pg_constraint.convalidated set as VALIDATE CONSTRAINT would. A foreign
// key's referenced unique index must exist (post-data built it).
//
// Updating a key's catalog row also invalidates its table's cached keys; a
// CHECK's does not, so sessions open now keep seeing it NOT VALID until
// something else invalidates the table's cache. None of them plans queries
// that could use it: every later session of the clone, and every user's,
// reads the catalog afresh.
func addTrusted(ctx context.Context, conn *pgx.Conn, cons []constraint) error {
	if len(cons) == 0 {
		return nil
	}
	var add strings.Builder
	tables, names, kinds := make([]string, len(cons)), make([]string, len(cons)), make([]string, len(cons))
	for i, k := range cons {
		fmt.Fprintf(&add, "ALTER TABLE ONLY %s ADD CONSTRAINT %s %s NOT VALID;\n", k.table, pgx.Identifier{k.name}.Sanitize(), k.def)
		tables[i], names[i], kinds[i] = k.table, k.name, string(k.kind)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := execSimple(ctx, tx.Conn().PgConn(), add.String()); err != nil {
		return fmt.Errorf("add constraints NOT VALID: %w", err)
	}
	tag, err := tx.Exec(ctx, `UPDATE pg_catalog.pg_constraint c SET convalidated = true
		FROM unnest($1::text[], $2::text[], $3::text[]) AS k (tbl, name, kind)
		WHERE c.conrelid = k.tbl::regclass AND c.conname = k.name AND c.contype::text = k.kind AND NOT c.convalidated`,
		tables, names, kinds)
	if err != nil {
		return fmt.Errorf("mark constraints valid: %w", err)
	}
	if tag.RowsAffected() != int64(len(cons)) {
		return fmt.Errorf("mark constraints valid: %d catalog rows matched, want %d", tag.RowsAffected(), len(cons))
	}
	return tx.Commit(ctx)
}
