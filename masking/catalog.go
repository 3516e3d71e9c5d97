package masking

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Catalog is what masking needs to know about a database's tables: columns
// with their types, keys, unique constraints, foreign keys and partitions.
// Load one with [LoadCatalog].
type Catalog struct {
	// Tables are the ordinary and partitioned tables (partitions included),
	// sorted by qualified name.
	Tables []*Table
	byName map[string]*Table
}

// Table is one table of a [Catalog].
type Table struct {
	Schema, Name string
	// Partitioned is set for a partitioned (parent) table.
	Partitioned bool
	// Parent is the qualified name of the table this one is a partition of,
	// or "".
	Parent  string
	Columns []*Column
	// PrimaryKey is nil when the table has none.
	PrimaryKey *Constraint
	// Uniques are unique constraints and unique indexes on plain columns.
	Uniques     []*Constraint
	ForeignKeys []*ForeignKey
}

// Column is one column of a [Table].
type Column struct {
	Name string
	// Type is the base type's name as pg_type spells it, domains resolved
	// ("int8", "varchar", "text", "uuid", "_text" for text[] …).
	Type string
	// Display is the type as declared (format_type: "character varying(20)",
	// "email_address").
	Display string
	// MaxLen is varchar(n)/char(n)'s n; 0 for none.
	MaxLen int
	// Precision and Scale are numeric(p,s)'s; 0 when unconstrained.
	Precision, Scale int
	NotNull          bool
	HasDefault       bool
	// Generated is set for stored generated columns (computed by the
	// target, never copied).
	Generated bool
	Identity  bool
}

// IsArray reports whether the column holds an array.
func (c *Column) IsArray() bool { return strings.HasPrefix(c.Type, "_") }

// Constraint is a primary key or unique constraint (or unique index).
type Constraint struct {
	Name    string
	Columns []string
}

// ForeignKey is a foreign-key constraint: Columns reference RefColumns of
// RefTable, pairwise.
type ForeignKey struct {
	Name       string
	Columns    []string
	RefTable   string // qualified
	RefColumns []string
}

// QualifiedName returns "schema.name".
func (t *Table) QualifiedName() string { return t.Schema + "." + t.Name }

// Column returns the named column, or nil.
func (t *Table) Column(name string) *Column {
	for _, c := range t.Columns {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// IsUnique reports whether the column is part of the primary key or of a
// unique constraint or index.
func (t *Table) IsUnique(col string) bool {
	if t.PrimaryKey != nil && slices.Contains(t.PrimaryKey.Columns, col) {
		return true
	}
	for _, u := range t.Uniques {
		if slices.Contains(u.Columns, col) {
			return true
		}
	}
	return false
}

// Table finds a table by "schema.name" or by a bare name in schema public
// (or, failing that, in the only schema that has it). It returns nil when
// there is none.
func (c *Catalog) Table(name string) *Table {
	if t, ok := c.byName[name]; ok {
		return t
	}
	if strings.Contains(name, ".") {
		return nil
	}
	if t, ok := c.byName["public."+name]; ok {
		return t
	}
	var found *Table
	for _, t := range c.Tables {
		if t.Name == name {
			if found != nil {
				return nil // ambiguous
			}
			found = t
		}
	}
	return found
}

// Root returns the top of t's partition tree (t itself when it is not a
// partition).
func (c *Catalog) Root(t *Table) *Table {
	for i := 0; t.Parent != "" && i < 100; i++ {
		p := c.byName[t.Parent]
		if p == nil {
			break
		}
		t = p
	}
	return t
}

// NewCatalog builds a catalog from tables (for tests and for callers that
// read the schema elsewhere).
func NewCatalog(tables []*Table) *Catalog {
	c := &Catalog{byName: map[string]*Table{}}
	for _, t := range tables {
		c.Tables = append(c.Tables, t)
		c.byName[t.QualifiedName()] = t
	}
	slices.SortFunc(c.Tables, func(a, b *Table) int { return strings.Compare(a.QualifiedName(), b.QualifiedName()) })
	return c
}

// LoadCatalog reads the tables of the database conn is connected to (all
// schemas but the system ones) from pg_catalog.
func LoadCatalog(ctx context.Context, conn *pgx.Conn) (*Catalog, error) {
	type rel struct {
		oid uint32
		t   *Table
	}
	rows, err := conn.Query(ctx, `
SELECT c.oid, n.nspname, c.relname, c.relkind = 'p',
       COALESCE((SELECT pn.nspname || '.' || pc.relname
                   FROM pg_inherits i
                   JOIN pg_class pc ON pc.oid = i.inhparent
                   JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                  WHERE i.inhrelid = c.oid AND c.relispartition), '')
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
 ORDER BY 2, 3`)
	if err != nil {
		return nil, fmt.Errorf("load catalog: list tables: %w", err)
	}
	byOID := map[uint32]*Table{}
	var oids []uint32
	var tables []*Table
	for rows.Next() {
		var oid uint32
		t := &Table{}
		if err := rows.Scan(&oid, &t.Schema, &t.Name, &t.Partitioned, &t.Parent); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load catalog: list tables: %w", err)
		}
		byOID[oid] = t
		oids = append(oids, oid)
		tables = append(tables, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load catalog: list tables: %w", err)
	}

	// Columns, with domains resolved to their base type.
	rows, err = conn.Query(ctx, `
SELECT a.attrelid, a.attname, a.attnum, format_type(a.atttypid, a.atttypmod),
       bt.typname,
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
       a.attnotnull OR (t.typtype = 'd' AND t.typnotnull),
       a.atthasdef, a.attgenerated <> '', a.attidentity <> ''
  FROM pg_attribute a
  JOIN pg_type t ON t.oid = a.atttypid
  JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
 WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attrelid, a.attnum`, oids)
	if err != nil {
		return nil, fmt.Errorf("load catalog: list columns: %w", err)
	}
	attnames := map[uint32]map[int16]string{}
	for rows.Next() {
		var relid uint32
		var num int16
		var typmod int32
		c := &Column{}
		if err := rows.Scan(&relid, &c.Name, &num, &c.Display, &c.Type, &typmod, &c.NotNull, &c.HasDefault, &c.Generated, &c.Identity); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load catalog: list columns: %w", err)
		}
		switch c.Type {
		case "varchar", "bpchar":
			if typmod >= 4 {
				c.MaxLen = int(typmod - 4)
			}
		case "numeric":
			if typmod >= 4 {
				c.Precision, c.Scale = int((typmod-4)>>16), int((typmod-4)&0xffff)
			}
		}
		t := byOID[relid]
		t.Columns = append(t.Columns, c)
		if attnames[relid] == nil {
			attnames[relid] = map[int16]string{}
		}
		attnames[relid][num] = c.Name
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load catalog: list columns: %w", err)
	}
	names := func(relid uint32, nums []int16) []string {
		out := make([]string, 0, len(nums))
		for _, n := range nums {
			out = append(out, attnames[relid][n])
		}
		return out
	}

	// Keys and foreign keys.
	rows, err = conn.Query(ctx, `
SELECT con.conrelid, con.conname, con.contype, con.conkey, con.confrelid, COALESCE(con.confkey, '{}')
  FROM pg_constraint con
 WHERE con.contype IN ('p', 'u', 'f') AND con.conrelid = ANY($1)
 ORDER BY con.conrelid, con.conname`, oids)
	if err != nil {
		return nil, fmt.Errorf("load catalog: list constraints: %w", err)
	}
	type fkRow struct {
		relid, refid uint32
		fk           *ForeignKey
		refnums      []int16
	}
	var fks []fkRow
	for rows.Next() {
		var relid, refid uint32
		var name, typ string
		var keys, refkeys []int16
		if err := rows.Scan(&relid, &name, &typ, &keys, &refid, &refkeys); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load catalog: list constraints: %w", err)
		}
		t := byOID[relid]
		switch typ {
		case "p":
			t.PrimaryKey = &Constraint{Name: name, Columns: names(relid, keys)}
		case "u":
			t.Uniques = append(t.Uniques, &Constraint{Name: name, Columns: names(relid, keys)})
		case "f":
			fks = append(fks, fkRow{relid, refid, &ForeignKey{Name: name, Columns: names(relid, keys)}, refkeys})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load catalog: list constraints: %w", err)
	}
	for _, f := range fks {
		ref := byOID[f.refid]
		if ref == nil {
			continue // references a table outside the catalog's schemas
		}
		f.fk.RefTable = ref.QualifiedName()
		f.fk.RefColumns = names(f.refid, f.refnums)
		byOID[f.relid].ForeignKeys = append(byOID[f.relid].ForeignKeys, f.fk)
	}

	// Unique indexes that are not constraints (partial ones included: they
	// still forbid duplicates; expression indexes are left out).
	rows, err = conn.Query(ctx, `
SELECT i.indrelid, ic.relname, i.indkey::int2[]
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
 WHERE i.indisunique AND i.indexprs IS NULL AND i.indrelid = ANY($1)
   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)
 ORDER BY 1, 2`, oids)
	if err != nil {
		return nil, fmt.Errorf("load catalog: list unique indexes: %w", err)
	}
	for rows.Next() {
		var relid uint32
		var name string
		var keys []int16
		if err := rows.Scan(&relid, &name, &keys); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load catalog: list unique indexes: %w", err)
		}
		byOID[relid].Uniques = append(byOID[relid].Uniques, &Constraint{Name: name, Columns: names(relid, keys)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load catalog: list unique indexes: %w", err)
	}
	return NewCatalog(tables), nil
}

// target describes a column as a transform target.
func (c *Column) target(table string, unique bool) Target {
	return Target{
		Column:    table + "." + c.Name,
		Type:      c.Type,
		MaxLen:    c.MaxLen,
		Precision: c.Precision,
		Scale:     c.Scale,
		Unique:    unique,
	}
}
