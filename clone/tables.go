package clone

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// This file reads, under the exported snapshot, what the data phase copies:
// tables with their columns and COPY format, sequences, populated
// materialized views and large objects.

// userRelation is the catalog filter for objects a clone copies: not in a
// system schema (names starting with pg_ are reserved: pg_catalog, pg_toast,
// pg_temp_N), not in information_schema, and not created by an extension's
// script (pg_depend deptype 'e'; CREATE EXTENSION on the target recreates
// those).
const userRelation = `n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`

// table is one table whose rows the data phase copies.
type table struct {
	oid    uint32
	schema string
	name   string
	bytes  int64 // pg_relation_size on the source
	blocks int64 // bytes / block_size
	cols   []string
	// text is set when the table must be copied in FORMAT text; reason says
	// which column forced it.
	text   bool
	reason string
	// relabel lists the columns of arrays of user-defined types, whose
	// binary form names the element type by its source OID: the copier
	// rewrites it to the target's OID (relabelArrays) or, for a masked
	// table, copies in text.
	relabel []relabelCol
	// relabelOIDs maps the positions of those columns in the stream to
	// their element type's source and target OIDs, for a table without a
	// filter (resolveRelabels).
	relabelOIDs map[int][2]uint32
	// filter rewrites the rows on their way (Options.Masker); nil: none.
	// targetCols are the columns it writes (nil: cols).
	filter     func(context.Context, io.Writer, io.Reader) (int64, error)
	targetCols []string
	// masked: filter includes Options.Masker's; changed are the columns
	// whose values it changes (Masker.ChangedColumns).
	masked  bool
	changed []string
}

// String is the unquoted qualified name used in messages and progress.
func (t *table) String() string { return t.schema + "." + t.name }

// ident is the quoted qualified name for SQL.
func (t *table) ident() string { return pgx.Identifier{t.schema, t.name}.Sanitize() }

// colList is the quoted column list, "(a, b)", or "" for a table without
// copyable columns (COPY then uses its default list, which is empty too).
func (t *table) colList() string { return quoteCols(t.cols) }

// targetColList is the column list of the COPY into the target: the
// masker's, when it leaves columns out, else colList.
func (t *table) targetColList() string {
	if t.targetCols != nil {
		return quoteCols(t.targetCols)
	}
	return quoteCols(t.cols)
}

func quoteCols(cols []string) string {
	if len(cols) == 0 {
		return ""
	}
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = pgx.Identifier{c}.Sanitize()
	}
	return "(" + strings.Join(q, ", ") + ")"
}

func (t *table) format() string {
	if t.text {
		return "text"
	}
	return "binary"
}

// listTables returns the tables whose rows a clone copies, largest first:
// ordinary tables and leaf partitions (relkind 'r'; a partitioned parent,
// 'p', holds no rows of its own), unlogged ones included, temporary ones,
// foreign tables, views and extension members excluded.
func listTables(ctx context.Context, q querier, serverMajor int) ([]*table, error) {
	rows, err := q.Query(ctx, `
SELECT c.oid, n.nspname, c.relname, pg_catalog.pg_relation_size(c.oid),
       pg_catalog.current_setting('block_size')::bigint
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence <> 't' AND `+userRelation+`
ORDER BY 4 DESC, 2, 3`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var tables []*table
	byOID := map[uint32]*table{}
	for rows.Next() {
		t := &table{}
		var blockSize int64
		if err := rows.Scan(&t.oid, &t.schema, &t.name, &t.bytes, &blockSize); err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		t.blocks = (t.bytes + blockSize - 1) / blockSize
		tables = append(tables, t)
		byOID[t.oid] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	if len(tables) == 0 {
		return nil, nil
	}
	oids := make([]uint32, 0, len(tables))
	for _, t := range tables {
		oids = append(oids, t.oid)
	}

	// Generated columns (PostgreSQL 12+) are computed by the target; dropped
	// columns are gone. Every COPY names its columns on both sides, so the
	// column order of the two tables never matters.
	generated := ""
	if serverMajor >= 12 {
		generated = "AND a.attgenerated = ''"
	}
	rows, err = q.Query(ctx, `
SELECT a.attrelid, a.attname, a.atttypid
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped `+generated+`
ORDER BY a.attrelid, a.attnum`, oids)
	if err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}
	colType := map[*table][]uint32{}
	for rows.Next() {
		var rel, typ uint32
		var name string
		if err := rows.Scan(&rel, &name, &typ); err != nil {
			return nil, fmt.Errorf("list columns: %w", err)
		}
		t := byOID[rel]
		t.cols = append(t.cols, name)
		colType[t] = append(colType[t], typ)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}

	var typeOIDs []uint32
	for _, ts := range colType {
		typeOIDs = append(typeOIDs, ts...)
	}
	types, err := loadTypes(ctx, q, typeOIDs)
	if err != nil {
		return nil, err
	}
	for t, ts := range colType {
		for i, typ := range ts {
			why, elem := types.needsText(typ)
			if why != "" {
				t.text = true
				t.reason = fmt.Sprintf("column %q: %s", t.cols[i], why)
				t.relabel = nil
				break
			}
			if elem != 0 {
				e := types[elem]
				t.relabel = append(t.relabel, relabelCol{pos: i, from: elem, schema: e.schema, typname: e.typname})
			}
		}
	}
	return tables, nil
}

// relabelCol is a column holding arrays of the user-defined type
// schema.typname, whose OID is from on the source.
type relabelCol struct {
	pos             int
	from            uint32
	schema, typname string
}

// typeInfo is what the COPY format decision needs to know about a type.
type typeInfo struct {
	name     string // format_type, for messages
	schema   string
	typname  string
	typtype  byte   // b base, c composite, d domain, e enum, p pseudo, r range, m multirange
	basetype uint32 // for a domain
	elem     uint32 // for an array (typlen = -1 and typelem <> 0)
	binaryIO bool   // has typsend and typreceive
	// For the statistics copier (lookupStatOps): ANALYZE's code for the
	// type ("std", "array" or "other": a typanalyze function of its own),
	// and the type's category and whether it is the category's preferred
	// type.
	analyze   string
	category  byte
	preferred bool
}

type typeMap map[uint32]typeInfo

// firstUnstableOID is the first OID that is not the same in every database
// of every server of a major version: OIDs from 10000 up are assigned by
// genbki, initdb and then users (FirstGenbkiObjectId), so the target may give
// the same type another one.
const firstUnstableOID = 10000

// needsText says why a column of type oid cannot be copied in binary COPY
// format, or "" when it can; relabel is the OID of the element type when
// the column holds arrays whose element type's OID must be rewritten on the
// way (0 when none).
//
// Binary COPY is a type's send/receive form, and two kinds of types embed
// type OIDs in it: arrays (the element type's OID) and composites (each
// field's type OID). The target gives user-defined types other OIDs than
// the source, and array_recv and record_recv refuse an OID that names
// another type of the target database (one unknown there passes, which is
// why a clone into a fresh cluster can fail where a clone within one
// server works). An array of
// an enum, of an extension base type or of a domain over one carries a
// single such OID, in its header, which the copier rewrites to the
// target's (relabelArrays). A composite, an array of composites or of
// ranges, or an array of a domain over an array embeds more, deeper in the
// value, and the table uses FORMAT text. Types without binary I/O functions
// (some extension types) need text too. Domains are looked through: their
// binary form is their base type's. Enums, ranges and extension base types
// such as citext send no OIDs and stay binary.
func (m typeMap) needsText(oid uint32) (why string, relabel uint32) {
	for range 32 { // domains over domains; bounded against catalog cycles
		t, ok := m[oid]
		if !ok {
			return fmt.Sprintf("unknown type %d", oid), 0
		}
		if !t.binaryIO {
			return fmt.Sprintf("type %s has no binary send/receive functions", t.name), 0
		}
		switch {
		case t.typtype == 'd':
			oid = t.basetype
			continue
		case t.typtype == 'c':
			return fmt.Sprintf("composite type %s embeds field type OIDs in binary COPY", t.name), 0
		case t.typtype == 'p':
			return fmt.Sprintf("pseudo-type %s", t.name), 0
		case t.elem != 0:
			e, ok := m[t.elem]
			if !ok {
				return fmt.Sprintf("unknown element type %d", t.elem), 0
			}
			if !e.binaryIO {
				return fmt.Sprintf("element type %s has no binary send/receive functions", e.name), 0
			}
			if t.elem < firstUnstableOID && e.typtype != 'c' && e.typtype != 'd' && e.typtype != 'p' {
				return "", 0 // a built-in element type: the same OID everywhere
			}
			if m.flatElement(t.elem) {
				return "", t.elem
			}
			return fmt.Sprintf("array type %s embeds type OIDs inside its elements (%s) in binary COPY", t.name, e.name), 0
		}
		return "", 0
	}
	return fmt.Sprintf("domain nesting too deep at type %d", oid), 0
}

// flatElement reports whether an array element of type oid is sent
// without type OIDs of its own: an enum, a base type (not an array), or a
// domain over one of those.
func (m typeMap) flatElement(oid uint32) bool {
	for range 32 {
		t, ok := m[oid]
		if !ok || !t.binaryIO {
			return false
		}
		switch t.typtype {
		case 'd':
			oid = t.basetype
			continue
		case 'e':
			return true
		case 'b':
			return t.elem == 0
		}
		return false
	}
	return false
}

// loadTypes reads the types named in oids and, transitively, the base types
// of domains and element types of arrays among them.
func loadTypes(ctx context.Context, q querier, oids []uint32) (typeMap, error) {
	m := typeMap{}
	want := slices.Compact(slices.Sorted(slices.Values(oids)))
	for len(want) > 0 {
		rows, err := q.Query(ctx, `
SELECT t.oid, pg_catalog.format_type(t.oid, NULL), n.nspname, t.typname, t.typtype::text, t.typbasetype,
       CASE WHEN t.typlen = -1 THEN t.typelem ELSE 0 END,
       t.typsend::oid <> 0 AND t.typreceive::oid <> 0,
       CASE t.typanalyze WHEN 0 THEN 'std' WHEN 'pg_catalog.array_typanalyze'::regproc THEN 'array' ELSE 'other' END,
       t.typcategory::text, t.typispreferred
FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE t.oid = ANY($1::oid[])`, want)
		if err != nil {
			return nil, fmt.Errorf("read column types: %w", err)
		}
		var next []uint32
		for rows.Next() {
			var oid uint32
			var ti typeInfo
			var typtype, category string
			if err := rows.Scan(&oid, &ti.name, &ti.schema, &ti.typname, &typtype, &ti.basetype, &ti.elem, &ti.binaryIO,
				&ti.analyze, &category, &ti.preferred); err != nil {
				return nil, fmt.Errorf("read column types: %w", err)
			}
			if typtype != "" {
				ti.typtype = typtype[0]
			}
			if category != "" {
				ti.category = category[0]
			}
			m[oid] = ti
			for _, ref := range []uint32{ti.basetype, ti.elem} {
				if ref != 0 {
					next = append(next, ref)
				}
			}
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read column types: %w", err)
		}
		want = want[:0]
		for _, o := range next {
			if _, ok := m[o]; !ok && !slices.Contains(want, o) {
				want = append(want, o)
			}
		}
	}
	return m, nil
}

// sequence is a sequence and the state read from the source.
type sequence struct {
	schema, name string
	lastValue    int64
	isCalled     bool
}

func (s *sequence) ident() string { return pgx.Identifier{s.schema, s.name}.Sanitize() }

// readSequences lists the source's sequences (identity and serial ones
// included, extension members excluded) and reads each one's last_value and
// is_called. Reading a sequence takes SELECT privilege on it. Sequences are
// not transactional: the values are the current ones, never lower than any
// value the snapshot's rows use.
func readSequences(ctx context.Context, q querier) ([]*sequence, error) {
	rows, err := q.Query(ctx, `
SELECT n.nspname, c.relname
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'S' AND `+userRelation+`
ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("list sequences: %w", err)
	}
	seqs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*sequence, error) {
		s := &sequence{}
		return s, r.Scan(&s.schema, &s.name)
	})
	if err != nil {
		return nil, fmt.Errorf("list sequences: %w", err)
	}
	if len(seqs) == 0 {
		return nil, nil
	}
	batch := &pgx.Batch{}
	for _, s := range seqs {
		batch.Queue("SELECT last_value, is_called FROM " + s.ident()).QueryRow(func(r pgx.Row) error {
			if err := r.Scan(&s.lastValue, &s.isCalled); err != nil {
				return fmt.Errorf("read sequence %q: %w", s.schema+"."+s.name, err)
			}
			return nil
		})
	}
	if err := q.SendBatch(ctx, batch).Close(); err != nil {
		return nil, err
	}
	return seqs, nil
}

// matview is a materialized view populated on the source.
type matview struct{ schema, name string }

func (m matview) ident() string  { return pgx.Identifier{m.schema, m.name}.Sanitize() }
func (m matview) String() string { return m.schema + "." + m.name }

// listPopulatedMatviews returns the source's materialized views that hold
// data (relispopulated); the others stay unpopulated in the clone, as
// pg_dump leaves them.
func listPopulatedMatviews(ctx context.Context, q querier) ([]matview, error) {
	rows, err := q.Query(ctx, `
SELECT n.nspname, c.relname
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'm' AND c.relispopulated AND `+userRelation+`
ORDER BY c.oid`)
	if err != nil {
		return nil, fmt.Errorf("list materialized views: %w", err)
	}
	mvs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (matview, error) {
		var m matview
		return m, r.Scan(&m.schema, &m.name)
	})
	if err != nil {
		return nil, fmt.Errorf("list materialized views: %w", err)
	}
	return mvs, nil
}

// listLargeObjects returns the OIDs of the source's large objects.
func listLargeObjects(ctx context.Context, q querier) ([]uint32, error) {
	rows, err := q.Query(ctx, `SELECT oid FROM pg_catalog.pg_largeobject_metadata ORDER BY oid`)
	if err != nil {
		return nil, fmt.Errorf("list large objects: %w", err)
	}
	oids, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		return nil, fmt.Errorf("list large objects: %w", err)
	}
	return oids, nil
}

// querier is what the catalog readers need: a *pgx.Conn or a pgx.Tx.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}
