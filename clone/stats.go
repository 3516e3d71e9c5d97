package clone

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Planner statistics from the source.
//
// The clone's rows are the source's, so the statistics ANALYZE would
// gather on the clone describe the same data as the source's own, except
// that they come from another random sample. Copying the source's
// statistics instead gives the clone's planner exactly what production's
// planner sees (the same estimates, so the same plans, which is what a
// replay compares), and spares the most expensive step after the indexes:
// ANALYZE of the 856 MB fixture costs about 5 CPU seconds (jsonb sorting,
// TOAST reads), a fifth of the clone.
//
// The source's pg_stats view has them in text form, readable by a role
// that may SELECT the columns (the same role the clone needs). They are
// written into the clone's pg_statistic as ANALYZE would have written
// them, which only a superuser may do: on a sandbox dbtwin is one; on
// another target the clone runs ANALYZE as before. Each value array is
// parsed by the target's own input function for the column's type
// (array_in, as PostgreSQL 18's pg_restore_attribute_stats does), and the
// operator and collation of each slot are the ones ANALYZE on the target
// would record (statResolver.lookup).
//
// What is not copied is gathered by ANALYZE on the clone, as before:
//   - the columns the masker changes (Masker.ChangedColumns), and the
//     generated columns of their tables, in the masked tables and in the
//     tables they inherit from (statistics hold sample values: the
//     source's would be unmasked); a masked table with an expression index
//     over such a column is analyzed whole (ANALYZE of some columns skips
//     the indexes);
//   - tables the source has no statistics for (never analyzed, or hidden
//     from the role by row-level security);
//   - columns whose type ANALYZE treats with its own code (ranges,
//     tsvector, extension types with a typanalyze function): only those
//     columns, ANALYZE t (c);
//   - tables with extended statistics (CREATE STATISTICS) or with an
//     expression index whose statistics the source does not show;
//   - materialized views, after their refresh.

// statsPlan is what the statistics phase copied: the ANALYZE jobs left are
// planned from it (planAnalyze).
type statsPlan struct {
	// done holds the target OIDs of the relations whose statistics are
	// all copied: ANALYZE skips them.
	done map[uint32]bool
	// cols holds, for a relation in done, columns still to ANALYZE.
	cols map[uint32][]string
	// indexRows are the source's statistics of index expressions, written
	// once the indexes exist (after post-data).
	indexRows []statRow
	// copied counts the pg_statistic rows written, for the log.
	copied int
	// resolver resolves the operators of the columns' types, for
	// finishStats too.
	resolver *statResolver
	// leaves are the copied tables by their OID on the clone, with what
	// the copy did.
	leaves map[uint32]TableResult
}

// statRow is one row of the source's pg_stats.
type statRow struct {
	schema, rel, att string
	inherited        bool
	nullFrac         float32
	width            int32
	distinct         float32
	mcv              *string
	mcf              []float32
	hist             *string
	corr             *float32
	mce              *string
	mcef             []float32
	dechist          []float32
	// indexOf is, for an index's expression column, the index's table;
	// indexRefs the table's columns the index refers to, and wholeRow is
	// set when it refers to the whole row.
	indexOf   string
	indexRefs []string
	wholeRow  bool
}

// Statistic kinds (pg_statistic_d.h) and the operators that typcache.c
// checks before it reports array or record equality.
const (
	kindMCV         = 1
	kindHistogram   = 2
	kindCorrelation = 3
	kindMCElem      = 4
	kindDECHist     = 5

	arrayEqOp  = 1070
	arrayLtOp  = 1072
	recordEqOp = 2988
	recordLtOp = 2990
)

// copyStats writes the source's statistics of the copied tables into the
// clone's pg_statistic, in one transaction on tgt, and returns the plan for
// what ANALYZE still has to do. It returns a nil plan (ANALYZE everything)
// when the target role may not write pg_statistic or the target is older
// than PostgreSQL 14.
//
// The columns the masker changes in a table, and in the tables it inherits
// from, are left to ANALYZE (statsPlan.cols).
func copyStats(ctx context.Context, src, tgt *pgx.Conn, super bool, tables []*table, results []TableResult, log *slog.Logger) (*statsPlan, error) {
	var major int
	if err := tgt.QueryRow(ctx, `SELECT pg_catalog.current_setting('server_version_num')::int / 10000`).Scan(&major); err != nil {
		return nil, fmt.Errorf("read target version: %w", err)
	}
	if !super || major < 14 {
		log.Debug("statistics gathered by ANALYZE: the target role may not write pg_statistic, or the target is older than PostgreSQL 14",
			"superuser", super, "major", major)
		return nil, nil
	}
	rels, err := loadStatRels(ctx, tgt, tables)
	if err != nil {
		return nil, err
	}
	ops, err := loadStatResolver(ctx, tgt, rels.typeOIDs())
	if err != nil {
		return nil, err
	}

	// The same text forms as COPY: values must parse back on the target.
	if err := execSimple(ctx, src.PgConn(), sessionSetup); err != nil {
		return nil, fmt.Errorf("set up source session: %w", err)
	}
	rows, err := src.Query(ctx, `
SELECT s.schemaname::text, s.tablename::text, s.attname::text, s.inherited, s.null_frac, s.avg_width, s.n_distinct,
       s.most_common_vals::text, s.most_common_freqs, s.histogram_bounds::text, s.correlation,
       s.most_common_elems::text, s.most_common_elem_freqs, s.elem_count_histogram,
       coalesce(ix.indexof, ''), coalesce(ix.refs, '{}'), coalesce(ix.whole, false)
FROM pg_catalog.pg_stats s
LEFT JOIN LATERAL (
  -- For an index: its table, the table's columns it refers to, and
  -- whether it refers to the whole row (or to no column at all).
  SELECT t.relname::text AS indexof,
         ARRAY(SELECT a.attname::text
               FROM pg_catalog.pg_depend d
               JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
               WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = i.oid
                 AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = x.indrelid) AS refs,
         EXISTS (SELECT FROM pg_catalog.pg_depend d
                 WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = i.oid
                   AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = x.indrelid
                   AND d.refobjsubid = 0) AS whole
  FROM pg_catalog.pg_class i
  JOIN pg_catalog.pg_namespace n ON n.oid = i.relnamespace
  JOIN pg_catalog.pg_index x ON x.indexrelid = i.oid
  JOIN pg_catalog.pg_class t ON t.oid = x.indrelid
  WHERE n.nspname = s.schemaname AND i.relname = s.tablename AND i.relkind = 'i') ix ON true
WHERE s.schemaname <> 'information_schema' AND s.schemaname !~ '^pg_'`)
	if err != nil {
		return nil, fmt.Errorf("read statistics of source: %w", err)
	}
	defer rows.Close()

	plan := &statsPlan{done: map[uint32]bool{}, cols: map[uint32][]string{}, leaves: map[uint32]TableResult{}, resolver: ops}
	byName := make(map[string]TableResult, len(results))
	for _, r := range results {
		byName[r.Name] = r
	}
	for _, t := range tables {
		if r, ok := rels[relKey{t.schema, t.name}]; ok {
			plan.leaves[r.oid] = byName[t.String()]
		}
	}
	if err := execSimple(ctx, tgt.PgConn(), "BEGIN"); err != nil {
		return nil, fmt.Errorf("write statistics: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = execSimple(context.WithoutCancel(ctx), tgt.PgConn(), "ROLLBACK")
		}
	}()
	var batch pgx.Batch
	flush := func() error {
		if batch.Len() == 0 {
			return nil
		}
		err := tgt.SendBatch(ctx, &batch).Close()
		batch = pgx.Batch{}
		if err != nil {
			return fmt.Errorf("write statistics: %w", err)
		}
		return nil
	}
	for rows.Next() {
		var r statRow
		if err := rows.Scan(&r.schema, &r.rel, &r.att, &r.inherited, &r.nullFrac, &r.width, &r.distinct,
			&r.mcv, &r.mcf, &r.hist, &r.corr, &r.mce, &r.mcef, &r.dechist, &r.indexOf, &r.indexRefs, &r.wholeRow); err != nil {
			return nil, fmt.Errorf("read statistics of source: %w", err)
		}
		if r.indexOf != "" {
			// The indexes are built after the data: kept for
			// writeIndexStats.
			// One over a changed column is left out: finishStats then has
			// the whole table analyzed.
			t, ok := rels[relKey{r.schema, r.indexOf}]
			if ok && !(t.changed != nil && (r.wholeRow || slices.ContainsFunc(r.indexRefs, t.fromMasked))) {
				plan.indexRows = append(plan.indexRows, r)
			}
			continue
		}
		rel, ok := rels[relKey{r.schema, r.rel}]
		if !ok {
			continue // not in the clone (an extension's table…)
		}
		col, ok := rel.cols[r.att]
		if !ok {
			continue
		}
		if rel.changed != nil && rel.fromMasked(r.att) {
			plan.cols[rel.oid] = append(plan.cols[rel.oid], r.att)
			continue
		}
		args, ok := statArgs(r, col, ops)
		if !ok {
			plan.cols[rel.oid] = append(plan.cols[rel.oid], r.att)
			continue
		}
		plan.done[rel.oid] = true
		batch.Queue(insertStatistic, append([]any{rel.oid, col.attnum, r.inherited}, args...)...)
		plan.copied++
		if batch.Len() >= 256 {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read statistics of source: %w", err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if err := execSimple(ctx, tgt.PgConn(), "COMMIT"); err != nil {
		return nil, fmt.Errorf("write statistics: %w", err)
	}
	committed = true
	for oid, cols := range plan.cols {
		if !plan.done[oid] {
			delete(plan.cols, oid) // nothing copied: the whole table is analyzed
		} else {
			plan.cols[oid] = slices.Compact(slices.Sorted(slices.Values(cols)))
		}
	}
	return plan, nil
}

// insertStatistic writes one pg_statistic row. Each slot is kind, operator,
// collation, numbers, and values as text with their element type, parsed
// by array_in: the only way to make a value of type anyarray from SQL.
var insertStatistic = func() string {
	var b strings.Builder
	b.WriteString(`INSERT INTO pg_catalog.pg_statistic (starelid, staattnum, stainherit, stanullfrac, stawidth, stadistinct`)
	for _, col := range []string{"stakind", "staop", "stacoll", "stanumbers", "stavalues"} {
		for i := 1; i <= 5; i++ {
			fmt.Fprintf(&b, ", %s%d", col, i)
		}
	}
	b.WriteString(") VALUES ($1, $2, $3, $4, $5, $6")
	n := 7
	for _, cast := range []string{"int2", "oid", "oid", "float4[]"} {
		for range 5 {
			fmt.Fprintf(&b, ", $%d::%s", n, cast)
			n++
		}
	}
	for range 5 {
		fmt.Fprintf(&b, ", pg_catalog.array_in($%d::text::cstring, $%d::oid, -1)", n, n+1)
		n += 2
	}
	b.WriteString(")")
	return b.String()
}()

// statSlot is one of the five slots of a pg_statistic row.
type statSlot struct {
	kind    int16
	op      uint32
	coll    uint32
	numbers []float32
	values  *string
	valType uint32
}

// statArgs turns a source row into insertStatistic's arguments after the
// first three, packing the kinds into slots in the order ANALYZE fills
// them. ok is false when the column must be analyzed on the clone: its
// type has a typanalyze function of its own, or a kind the source has
// needs an operator the target's type lacks.
func statArgs(r statRow, col statCol, ops *statResolver) (args []any, ok bool) {
	o := ops.lookup(col.typ)
	if !o.standard {
		return nil, false
	}
	var slots []statSlot
	add := func(kind int16, op uint32, numbers []float32, values *string, valType uint32) bool {
		if op == 0 {
			return false
		}
		slots = append(slots, statSlot{kind: kind, op: op, coll: col.coll, numbers: numbers, values: values, valType: valType})
		return true
	}
	if r.mcv != nil && !add(kindMCV, o.eq, r.mcf, r.mcv, col.typ) {
		return nil, false
	}
	if r.hist != nil && !add(kindHistogram, o.lt, nil, r.hist, col.typ) {
		return nil, false
	}
	if r.corr != nil && !add(kindCorrelation, o.lt, []float32{*r.corr}, nil, 0) {
		return nil, false
	}
	if r.mce != nil && !add(kindMCElem, o.elemEq, r.mcef, r.mce, o.elem) {
		return nil, false
	}
	if r.dechist != nil && !add(kindDECHist, o.elemEq, r.dechist, nil, 0) {
		return nil, false
	}
	slots = append(slots, make([]statSlot, 5-len(slots))...)
	args = []any{r.nullFrac, r.width, r.distinct}
	for _, s := range slots {
		args = append(args, s.kind)
	}
	for _, s := range slots {
		args = append(args, s.op)
	}
	for _, s := range slots {
		args = append(args, s.coll)
	}
	for _, s := range slots {
		args = append(args, s.numbers)
	}
	for _, s := range slots {
		args = append(args, s.values, s.valType)
	}
	return args, true
}

// relKey names a relation: schema and name, unquoted.
type relKey struct{ schema, name string }

// statRel is a relation of the clone that may receive statistics.
type statRel struct {
	oid     uint32
	kind    byte // 'r' or 'p'
	parents []uint32
	// changed holds the columns the masker changes in it or in a table
	// that inherits from it; nil: none is masked.
	changed map[string]bool
	cols    map[string]statCol
}

// fromMasked reports whether the statistics of column att of a masked table
// come from masked values: a changed column, or a generated one (which may
// be computed from one).
func (r *statRel) fromMasked(att string) bool {
	return r.changed[att] || r.cols[att].generated
}

// statCol is a column of a statRel.
type statCol struct {
	attnum    int16
	typ       uint32
	coll      uint32
	generated bool
}

// statRels are the clone's tables by name.
type statRels map[relKey]*statRel

// typeOIDs lists the types of their columns.
func (s statRels) typeOIDs() []uint32 {
	var oids []uint32
	for _, r := range s {
		for _, c := range r.cols {
			oids = append(oids, c.typ)
		}
	}
	return oids
}

// loadStatRels reads the clone's tables and partitioned tables with their
// columns, and marks the columns the masker changes (table.changed) in the
// masked tables and in every table they inherit from.
func loadStatRels(ctx context.Context, tgt *pgx.Conn, tables []*table) (statRels, error) {
	rows, err := tgt.Query(ctx, `
SELECT n.nspname, c.relname, c.oid, c.relkind::text,
       ARRAY(SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid),
       a.attname, a.attnum, a.atttypid, a.attcollation, a.attgenerated <> ''
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p') AND `+userRelation)
	if err != nil {
		return nil, fmt.Errorf("read tables of the clone: %w", err)
	}
	s := statRels{}
	byOID := map[uint32]*statRel{}
	var k relKey
	var oid uint32
	var parents []uint32
	var kind, att string
	var col statCol
	_, err = pgx.ForEachRow(rows, []any{&k.schema, &k.name, &oid, &kind, &parents, &att, &col.attnum, &col.typ, &col.coll, &col.generated}, func() error {
		r := s[k]
		if r == nil {
			r = &statRel{oid: oid, kind: kind[0], parents: parents, cols: map[string]statCol{}}
			s[k] = r
			byOID[oid] = r
		}
		r.cols[att] = col
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read tables of the clone: %w", err)
	}
	for _, t := range tables {
		r := s[relKey{t.schema, t.name}]
		if len(t.changed) == 0 || r == nil {
			continue
		}
		// Up the inheritance tree (bounded against catalog cycles).
		level := []*statRel{r}
		for depth := 0; len(level) > 0 && depth < 64; depth++ {
			var next []*statRel
			for _, r := range level {
				if r.changed == nil {
					r.changed = map[string]bool{}
				}
				for _, c := range t.changed {
					r.changed[c] = true
				}
				for _, p := range r.parents {
					if pr := byOID[p]; pr != nil {
						next = append(next, pr)
					}
				}
			}
			level = next
		}
	}
	return s, nil
}

// statOp is what ANALYZE on the target would record for a column type:
// whether it uses the standard statistics (std_typanalyze, or
// array_typanalyze for arrays), and the operators of each kind.
type statOp struct {
	standard bool
	eq, lt   uint32 // for most common values (eq), histogram and correlation (lt)
	elem     uint32 // arrays: the element type of the element statistics
	elemEq   uint32 // arrays: the element type's equality operator
}

// opclass is a default btree or hash operator class with its equality and
// (btree) less-than operators for its input type.
type opclass struct {
	btree  bool
	intype uint32
	eq, lt uint32
}

// Pseudo-types an operator class may be declared for.
const (
	anyOID        = 2276
	anyelementOID = 2283
	anyarrayOID   = 2277
	anyenumOID    = 3500
	anyrangeOID   = 3831
	recordOID     = 2249
)

// loadStatResolver reads what statResolver.lookup needs to resolve the
// operators ANALYZE on the target records for the types in oids, as
// typcache.c's lookup_type_cache does: the default btree operator class of
// the type (looking through domains; an exact match first, then one the
// type is binary-coercible to, preferring the category's preferred type),
// its = and <, or else the default hash class's =; array = and < only
// where the element type has them. Composite types (record = needs every
// field's) are left to ANALYZE.
func loadStatResolver(ctx context.Context, tgt *pgx.Conn, oids []uint32) (*statResolver, error) {
	rows, err := tgt.Query(ctx, `
SELECT am.amname = 'btree', c.opcintype,
       coalesce((SELECT o.amopopr FROM pg_catalog.pg_amop o WHERE o.amopfamily = c.opcfamily
                 AND o.amoplefttype = c.opcintype AND o.amoprighttype = c.opcintype
                 AND o.amopstrategy = CASE am.amname WHEN 'btree' THEN 3 ELSE 1 END), 0),
       coalesce((SELECT o.amopopr FROM pg_catalog.pg_amop o WHERE am.amname = 'btree' AND o.amopfamily = c.opcfamily
                 AND o.amoplefttype = c.opcintype AND o.amoprighttype = c.opcintype AND o.amopstrategy = 1), 0)
FROM pg_catalog.pg_opclass c JOIN pg_catalog.pg_am am ON am.oid = c.opcmethod
WHERE c.opcdefault AND am.amname IN ('btree', 'hash')`)
	if err != nil {
		return nil, fmt.Errorf("read operator classes of the clone: %w", err)
	}
	var classes []opclass
	var oc opclass
	if _, err := pgx.ForEachRow(rows, []any{&oc.btree, &oc.intype, &oc.eq, &oc.lt}, func() error {
		classes = append(classes, oc)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read operator classes of the clone: %w", err)
	}
	// The columns' types (with the base types of domains and the
	// element types of arrays), and the classes' input types for the
	// preferred-type rule.
	want := slices.Clone(oids)
	for _, c := range classes {
		want = append(want, c.intype)
	}
	types, err := loadTypes(ctx, tgt, want)
	if err != nil {
		return nil, err
	}
	rows, err = tgt.Query(ctx, `SELECT c.castsource, c.casttarget FROM pg_catalog.pg_cast c WHERE c.castmethod = 'b' AND c.castcontext = 'i'`)
	if err != nil {
		return nil, fmt.Errorf("read casts of the clone: %w", err)
	}
	binary := map[[2]uint32]bool{}
	var from, to uint32
	if _, err := pgx.ForEachRow(rows, []any{&from, &to}, func() error {
		binary[[2]uint32{from, to}] = true
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read casts of the clone: %w", err)
	}

	return &statResolver{types: types, classes: classes, binary: binary}, nil
}

// addTypes reads the types in oids that r does not know yet.
func (r *statResolver) addTypes(ctx context.Context, conn *pgx.Conn, oids []uint32) error {
	var missing []uint32
	for _, o := range oids {
		if _, ok := r.types[o]; !ok {
			missing = append(missing, o)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	types, err := loadTypes(ctx, conn, missing)
	maps.Copy(r.types, types)
	return err
}

// statResolver answers lookup's questions from the catalog rows
// loadStatResolver read.
type statResolver struct {
	types   typeMap
	classes []opclass
	binary  map[[2]uint32]bool // implicit binary-coercible casts
}

// base looks through domains (bounded against catalog cycles).
func (r statResolver) base(oid uint32) uint32 {
	for range 32 {
		t, ok := r.types[oid]
		if !ok || t.typtype != 'd' {
			return oid
		}
		oid = t.basetype
	}
	return 0
}

// lookup returns what ANALYZE on the target records for a column of type
// oid (see loadStatResolver).
func (r statResolver) lookup(oid uint32) statOp {
	t, ok := r.types[oid]
	if !ok || t.analyze == "other" {
		return statOp{}
	}
	b := r.base(oid)
	bt, ok := r.types[b]
	if !ok || bt.typtype == 'c' || b == recordOID {
		return statOp{}
	}
	o := statOp{standard: true}
	o.eq, o.lt = r.eqLt(b)
	if bt.elem != 0 {
		eeq, elt := r.eqLt(r.base(bt.elem))
		if o.eq == arrayEqOp && eeq == 0 {
			o.eq = 0
		}
		if o.lt == arrayLtOp && elt == 0 {
			o.lt = 0
		}
		if t.analyze == "array" {
			o.elem, o.elemEq = bt.elem, eeq
		}
	}
	if o.eq == recordEqOp || o.lt == recordLtOp {
		return statOp{}
	}
	return o
}

// eqLt returns the = and < of the default btree class of base type b, or
// the = of its default hash class; 0 where there is none.
func (r statResolver) eqLt(b uint32) (eq, lt uint32) {
	if c, ok := r.defaultClass(b, true); ok {
		eq, lt = c.eq, c.lt
	}
	if eq == 0 {
		if c, ok := r.defaultClass(b, false); ok {
			eq = c.eq
		}
	}
	return eq, lt
}

// defaultClass is indexcmds.c's GetDefaultOpClass for base type b.
func (r statResolver) defaultClass(b uint32, btree bool) (opclass, bool) {
	bt := r.types[b]
	var exact, preferred, compatible []opclass
	for _, c := range r.classes {
		if c.btree != btree {
			continue
		}
		switch {
		case c.intype == b:
			exact = append(exact, c)
		case r.coercible(b, bt, c.intype):
			it := r.types[c.intype]
			if it.preferred && it.category == bt.category {
				preferred = append(preferred, c)
			} else {
				compatible = append(compatible, c)
			}
		}
	}
	switch {
	case len(exact) == 1:
		return exact[0], true
	case len(exact) > 1:
		return opclass{}, false
	case len(preferred) == 1:
		return preferred[0], true
	case len(preferred) == 0 && len(compatible) == 1:
		return compatible[0], true
	}
	return opclass{}, false
}

// coercible is parse_coerce.c's IsBinaryCoercible for base type b.
func (r statResolver) coercible(b uint32, bt typeInfo, target uint32) bool {
	switch target {
	case anyOID, anyelementOID:
		return true
	case anyarrayOID:
		return bt.elem != 0
	case anyenumOID:
		return bt.typtype == 'e'
	case anyrangeOID:
		return bt.typtype == 'r'
	case recordOID:
		return bt.typtype == 'c'
	}
	return r.binary[[2]uint32{b, target}]
}

// finishStats completes the copied statistics once the indexes exist: the
// statistics of index expressions, the sizes ANALYZE would have recorded
// in pg_class where CREATE INDEX did not already, and the activity
// counters, reset so that autovacuum does not analyze every table again
// right after the clone (its threshold counts rows inserted since the last
// ANALYZE: all of them). A table whose expression index has no statistics
// on the source, or that has extended statistics, leaves plan.done:
// ANALYZE gathers those.
func finishStats(ctx context.Context, conn *pgx.Conn, plan *statsPlan) error {
	oids := make([]uint32, 0, len(plan.done))
	for oid := range plan.done {
		oids = append(oids, oid)
	}
	slices.Sort(oids)

	type indexCol struct {
		table, index uint32
		key          [3]string // schema, index, column
		col          statCol
	}
	rows, err := conn.Query(ctx, `
SELECT x.indrelid, x.indexrelid, n.nspname, i.relname, a.attname, a.attnum, a.atttypid, a.attcollation
FROM pg_catalog.pg_index x
JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
JOIN pg_catalog.pg_namespace n ON n.oid = i.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.oid AND a.attnum > 0
WHERE x.indrelid = ANY($1::oid[]) AND i.relkind = 'i' AND x.indkey[a.attnum - 1] = 0
UNION ALL
SELECT DISTINCT s.stxrelid, 0, NULL, NULL, NULL, 0, 0, 0
FROM pg_catalog.pg_statistic_ext s WHERE s.stxrelid = ANY($1::oid[])`, oids)
	if err != nil {
		return fmt.Errorf("read index expressions of the clone: %w", err)
	}
	var cols []indexCol
	var ic indexCol
	var schema, index, att *string
	if _, err := pgx.ForEachRow(rows, []any{&ic.table, &ic.index, &schema, &index, &att, &ic.col.attnum, &ic.col.typ, &ic.col.coll}, func() error {
		if schema == nil {
			delete(plan.done, ic.table) // extended statistics
			return nil
		}
		ic.key = [3]string{*schema, *index, *att}
		cols = append(cols, ic)
		return nil
	}); err != nil {
		return fmt.Errorf("read index expressions of the clone: %w", err)
	}
	if len(cols) > 0 {
		src := make(map[[3]string]statRow, len(plan.indexRows))
		for _, r := range plan.indexRows {
			src[[3]string{r.schema, r.rel, r.att}] = r
		}
		var typs []uint32
		for _, c := range cols {
			typs = append(typs, c.col.typ)
		}
		ops := plan.resolver
		if err := ops.addTypes(ctx, conn, typs); err != nil {
			return err
		}
		var batch pgx.Batch
		for _, c := range cols {
			if !plan.done[c.table] {
				continue
			}
			r, ok := src[c.key]
			var args []any
			if ok {
				args, ok = statArgs(r, c.col, ops)
			}
			if !ok {
				delete(plan.done, c.table) // ANALYZE t computes it
				continue
			}
			batch.Queue(insertStatistic, append([]any{c.index, c.col.attnum, false}, args...)...)
			plan.copied++
		}
		if err := conn.SendBatch(ctx, &batch).Close(); err != nil {
			return fmt.Errorf("write statistics of index expressions: %w", err)
		}
	}

	// Sizes, where CREATE INDEX did not record them (reltuples < 0): the
	// rows copied, and every page all-visible where COPY FREEZE loaded the
	// table whole, as ANALYZE would count them (it reads the visibility
	// map); a partitioned table's rows are its leaves', its pages -1.
	var leaves, done []uint32
	var rowCounts []float64
	var frozen []bool
	for oid, t := range plan.leaves {
		leaves = append(leaves, oid)
		rowCounts = append(rowCounts, float64(t.Rows))
		frozen = append(frozen, t.Chunks == 1) // copyJob: a whole table loads with COPY FREEZE
		if plan.done[oid] {
			done = append(done, oid)
		}
	}
	var parents []uint32
	for _, oid := range oids {
		if _, leaf := plan.leaves[oid]; plan.done[oid] && !leaf {
			parents = append(parents, oid)
		}
	}
	var batch pgx.Batch
	batch.Queue(`
UPDATE pg_catalog.pg_class c
SET relpages = p.pages, reltuples = v.rows, relallvisible = CASE WHEN v.frozen THEN p.pages ELSE 0 END
FROM ROWS FROM (pg_catalog.unnest($1::oid[]), pg_catalog.unnest($2::float8[]), pg_catalog.unnest($3::bool[])) AS v(oid, rows, frozen),
     LATERAL (SELECT (pg_catalog.pg_relation_size(v.oid) / pg_catalog.current_setting('block_size')::int)::int AS pages) p
WHERE c.oid = v.oid AND c.oid = ANY($4::oid[]) AND c.reltuples < 0`, leaves, rowCounts, frozen, done)
	batch.Queue(`
UPDATE pg_catalog.pg_class c
SET relpages = -1, reltuples = (SELECT coalesce(sum(v.rows), 0)
                                FROM pg_catalog.pg_partition_tree(c.oid) t
                                JOIN ROWS FROM (pg_catalog.unnest($1::oid[]), pg_catalog.unnest($2::float8[])) AS v(oid, rows) ON v.oid = t.relid)
WHERE c.oid = ANY($3::oid[]) AND c.relkind = 'p'`, leaves, rowCounts, parents)
	batch.Queue(`SELECT pg_catalog.pg_stat_reset_single_table_counters(o) FROM pg_catalog.unnest($1::oid[]) o`, done)
	if err := conn.SendBatch(ctx, &batch).Close(); err != nil {
		return fmt.Errorf("record table sizes: %w", err)
	}
	return nil
}
