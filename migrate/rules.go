package migrate

import (
	"fmt"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// statement runs every rule over one parsed statement and updates the
// linter's knowledge of the schema the set builds.
func (l *linter) statement(ps parsedStmt) {
	n := ps.node
	if n == nil {
		return
	}
	if what, ok := refusesTransaction(n, l.opts.ServerMajor); ok && !l.mig.NoTransaction {
		if n.GetAlterEnumStmt() != nil {
			l.add(ps, "DT018", "", fmt.Sprintf("ALTER TYPE %s ADD VALUE cannot run inside a transaction before PostgreSQL 12, and this %s migration runs in one", typeName(n.GetAlterEnumStmt().TypeName), l.formatName()),
				"run it "+noTxHow(l.mig.Format)+", or upgrade to PostgreSQL 12+ (where it may run in a transaction but the new value cannot be used until it commits)", nil)
		} else {
			l.add(ps, "DT002", "", fmt.Sprintf("%s cannot run inside a transaction block, and %s: the migration will fail", what, l.txReason()),
				"run it "+noTxHow(l.mig.Format)+"; keep other statements out of that migration", nil)
		}
	}
	switch {
	case n.GetVariableSetStmt() != nil:
		l.variableSet(n.GetVariableSetStmt())
	case n.GetSelectStmt() != nil:
		l.setConfig(n)
	case n.GetCreateStmt() != nil:
		if rv := n.GetCreateStmt().Relation; rv != nil {
			l.created[tkey(rv.Schemaname, rv.Relname)] = true
		}
	case n.GetCreateTableAsStmt() != nil:
		if in := n.GetCreateTableAsStmt().Into; in != nil && in.Rel != nil {
			l.created[tkey(in.Rel.Schemaname, in.Rel.Relname)] = true
		}
	case n.GetIndexStmt() != nil:
		l.createIndex(ps, n.GetIndexStmt())
	case n.GetAlterTableStmt() != nil:
		l.alterTable(ps, n.GetAlterTableStmt())
	case n.GetRenameStmt() != nil:
		l.rename(ps, n.GetRenameStmt())
	case n.GetDropStmt() != nil:
		l.drop(ps, n.GetDropStmt())
	case n.GetVacuumStmt() != nil:
		v := n.GetVacuumStmt()
		if v.IsVacuumcmd && hasDefElem(v.Options, "full") {
			_, rels, lock := stmtLock(n)
			l.add(ps, "DT012", lock, fmt.Sprintf("VACUUM FULL %s rewrites the table under ACCESS EXCLUSIVE: all reads and writes wait for the whole rewrite", joinTables(rels, "(every table)")),
				"use plain VACUUM (no lock on reads or writes), or pg_repack / pg_squeeze to compact online", nil)
		}
	case n.GetClusterStmt() != nil:
		_, rels, lock := stmtLock(n)
		l.add(ps, "DT012", lock, fmt.Sprintf("CLUSTER %s rewrites the table under ACCESS EXCLUSIVE: all reads and writes wait for the whole rewrite", joinTables(rels, "(every clustered table)")),
			"use pg_repack --order-by to re-order online, or drop CLUSTER from the migration", nil)
	case n.GetReindexStmt() != nil:
		r := n.GetReindexStmt()
		if !hasDefElem(r.Params, "concurrently") {
			_, _, lock := stmtLock(n)
			name := r.Name
			if r.Relation != nil {
				name = display(r.Relation.Schemaname, r.Relation.Relname)
			}
			l.add(ps, "DT016", lock, fmt.Sprintf("REINDEX %s without CONCURRENTLY blocks writes to the table, and queries that would use the index, until it finishes", name),
				"REINDEX … CONCURRENTLY (PostgreSQL 12+) "+noTxHow(l.mig.Format), nil)
		}
	case n.GetTruncateStmt() != nil:
		var existing []tableRef
		for _, r := range n.GetTruncateStmt().Relations {
			if rv := r.GetRangeVar(); rv != nil && !l.isNew(rv.Schemaname, rv.Relname) {
				existing = append(existing, tableRef{rv.Schemaname, rv.Relname})
			}
		}
		if len(existing) > 0 {
			_, _, lock := stmtLock(n)
			l.add(ps, "DT017", lock, fmt.Sprintf("TRUNCATE %s deletes every row under ACCESS EXCLUSIVE: the old application loses its data mid-deploy", joinTables(existing, "")),
				"delete in batches (DELETE … WHERE id IN (SELECT … LIMIT 10000)) from a job, or stop using the table in a release before emptying it", nil)
		}
	}
	// DT013: ACCESS EXCLUSIVE on an existing relation without lock_timeout.
	if mode, rels, lock := stmtLock(n); mode == LockAccessExclusive && !l.lockTimeout {
		var existing []tableRef
		for _, r := range rels {
			if !l.isNew(r.schema, r.name) && !l.createdIdx[tkey(r.schema, r.name)] {
				existing = append(existing, r)
			}
		}
		if len(existing) > 0 {
			l.add(ps, "DT013", lock, fmt.Sprintf("takes ACCESS EXCLUSIVE on %s without a lock_timeout: while it waits for a running query, every later query on the table queues behind it — an outage even if the statement itself is instant", joinTables(existing, "")),
				"SET lock_timeout = '2s' (SET LOCAL inside the migration's transaction) before it, and retry the migration when it times out", nil)
		}
	}
}

func (l *linter) formatName() string {
	if l.mig.Format == "" {
		return "plain"
	}
	return string(l.mig.Format)
}

// txReason explains why the migration runs in a transaction.
func (l *linter) txReason() string {
	switch l.mig.Format {
	case FormatGolangMigrate:
		return "golang-migrate sends this multi-statement file as one query, which PostgreSQL runs as one implicit transaction"
	case FormatGoose:
		return "goose runs this migration in a transaction (no -- +goose NO TRANSACTION)"
	case FormatDbmate:
		return "dbmate runs this migration in a transaction (no transaction:false)"
	case FormatAtlas:
		return "atlas runs this file in a transaction (no -- atlas:txmode none)"
	case FormatFlyway:
		return "Flyway runs this migration in a transaction (executeInTransaction=true)"
	}
	return "this migration runs in a transaction"
}

// variableSet tracks SET lock_timeout for DT013.
func (l *linter) variableSet(v *pg_query.VariableSetStmt) {
	if v.Kind == pg_query.VariableSetKind_VAR_RESET_ALL {
		l.lockTimeout = false
		return
	}
	if !strings.EqualFold(v.Name, "lock_timeout") {
		return
	}
	switch v.Kind {
	case pg_query.VariableSetKind_VAR_SET_VALUE:
		if v.IsLocal && l.mig.NoTransaction {
			return // SET LOCAL outside a transaction has no effect
		}
		l.lockTimeout = len(v.Args) > 0 && !isZeroSetting(v.Args[0])
	default:
		l.lockTimeout = false
	}
}

// setConfig tracks SELECT set_config('lock_timeout', '2s', …).
func (l *linter) setConfig(n *pg_query.Node) {
	walk(n, func(m proto.Message) bool {
		fc, ok := m.(*pg_query.FuncCall)
		if !ok || funcName(fc) != "set_config" || len(fc.Args) < 2 {
			return true
		}
		if c := fc.Args[0].GetAConst(); c != nil && c.GetSval() != nil && strings.EqualFold(c.GetSval().Sval, "lock_timeout") {
			l.lockTimeout = !isZeroSetting(fc.Args[1])
		}
		return true
	})
}

// isZeroSetting reports whether a SET value means "off" (0, '0', '0s').
func isZeroSetting(n *pg_query.Node) bool {
	c := n.GetAConst()
	if c == nil {
		return false
	}
	if iv := c.GetIval(); iv != nil && c.GetSval() == nil {
		return iv.Ival == 0
	}
	if s := c.GetSval(); s != nil {
		v := strings.TrimRight(strings.TrimSpace(s.Sval), "smin")
		f, err := strconv.ParseFloat(v, 64)
		return err == nil && f == 0
	}
	return false
}

func (l *linter) createIndex(ps parsedStmt, ix *pg_query.IndexStmt) {
	if ix.Relation == nil {
		return
	}
	schema := ix.Relation.Schemaname
	if ix.Idxname != "" {
		l.createdIdx[tkey(schema, ix.Idxname)] = true
	}
	if ix.Concurrent || l.isNew(schema, ix.Relation.Relname) {
		return
	}
	t := display(schema, ix.Relation.Relname)
	name := ix.Idxname
	if name == "" {
		name = "(unnamed)"
	}
	kind := "INDEX"
	if ix.Unique {
		kind = "UNIQUE INDEX"
	}
	l.add(ps, "DT001", fmt.Sprintf("SHARE on %s (%s) for the whole build", t, LockShare.Blocks()),
		fmt.Sprintf("CREATE %s %s on existing table %s without CONCURRENTLY: INSERT, UPDATE and DELETE on %s wait until the index is built", kind, name, t, t),
		fmt.Sprintf("CREATE %s CONCURRENTLY %s, %s; it builds without blocking writes, and if it fails it leaves an INVALID index to DROP INDEX CONCURRENTLY and retry (on a partitioned table: CREATE INDEX ON ONLY the parent, CONCURRENTLY on each partition, then ALTER INDEX … ATTACH PARTITION)", kind, name, noTxHow(l.mig.Format)), nil)
}

// alterCmdLock is the lock an ALTER TABLE subcommand takes (PostgreSQL's
// AlterTableGetLockLevel, simplified).
func alterCmdLock(c *pg_query.AlterTableCmd) LockMode {
	switch c.Subtype {
	case pg_query.AlterTableType_AT_SetStatistics, pg_query.AlterTableType_AT_SetOptions, pg_query.AlterTableType_AT_ResetOptions,
		pg_query.AlterTableType_AT_ValidateConstraint, pg_query.AlterTableType_AT_ClusterOn, pg_query.AlterTableType_AT_DropCluster,
		pg_query.AlterTableType_AT_SetRelOptions, pg_query.AlterTableType_AT_ResetRelOptions, pg_query.AlterTableType_AT_ReplaceRelOptions,
		pg_query.AlterTableType_AT_AttachPartition:
		return LockShareUpdateExclusive
	case pg_query.AlterTableType_AT_DetachPartition:
		if pc := c.Def.GetPartitionCmd(); pc != nil && pc.Concurrent {
			return LockShareUpdateExclusive
		}
	case pg_query.AlterTableType_AT_EnableTrig, pg_query.AlterTableType_AT_EnableAlwaysTrig, pg_query.AlterTableType_AT_EnableReplicaTrig,
		pg_query.AlterTableType_AT_DisableTrig, pg_query.AlterTableType_AT_EnableTrigAll, pg_query.AlterTableType_AT_DisableTrigAll,
		pg_query.AlterTableType_AT_EnableTrigUser, pg_query.AlterTableType_AT_DisableTrigUser:
		return LockShareRowExclusive
	case pg_query.AlterTableType_AT_AddConstraint:
		if con := c.Def.GetConstraint(); con != nil && con.Contype == pg_query.ConstrType_CONSTR_FOREIGN {
			return LockShareRowExclusive
		}
	}
	return LockAccessExclusive
}

// stmtLock returns the strongest table-level lock a statement takes, the
// relations it takes it on, and a description for findings.
func stmtLock(n *pg_query.Node) (LockMode, []tableRef, string) {
	rv := func(r *pg_query.RangeVar) tableRef { return tableRef{r.Schemaname, r.Relname} }
	var (
		mode LockMode
		rels []tableRef
		also string
	)
	switch {
	case n.GetAlterTableStmt() != nil:
		a := n.GetAlterTableStmt()
		if a.Relation == nil {
			return "", nil, ""
		}
		for _, c := range a.Cmds {
			if cmd := c.GetAlterTableCmd(); cmd != nil {
				mode = strongest(mode, alterCmdLock(cmd))
				if con := cmd.Def.GetConstraint(); con != nil && con.Contype == pg_query.ConstrType_CONSTR_FOREIGN && con.Pktable != nil {
					also = fmt.Sprintf(", %s on %s", LockShareRowExclusive, display(con.Pktable.Schemaname, con.Pktable.Relname))
				}
			}
		}
		rels = []tableRef{rv(a.Relation)}
	case n.GetIndexStmt() != nil:
		ix := n.GetIndexStmt()
		if ix.Relation == nil {
			return "", nil, ""
		}
		mode = LockShare
		if ix.Concurrent {
			mode = LockShareUpdateExclusive
		}
		rels = []tableRef{rv(ix.Relation)}
	case n.GetDropStmt() != nil:
		d := n.GetDropStmt()
		switch d.RemoveType {
		case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_MATVIEW, pg_query.ObjectType_OBJECT_SEQUENCE:
			mode = LockAccessExclusive
		case pg_query.ObjectType_OBJECT_INDEX:
			mode = LockAccessExclusive
			if d.Concurrent {
				mode = LockShareUpdateExclusive
			}
			also = " (and on the index's table)"
		default:
			return "", nil, ""
		}
		for _, o := range d.Objects {
			if s, name := qualifiedName(o); name != "" {
				rels = append(rels, tableRef{s, name})
			}
		}
	case n.GetRenameStmt() != nil:
		r := n.GetRenameStmt()
		if r.Relation == nil {
			return "", nil, ""
		}
		mode = LockAccessExclusive
		if r.RenameType == pg_query.ObjectType_OBJECT_INDEX {
			mode = LockShareUpdateExclusive
		}
		rels = []tableRef{rv(r.Relation)}
	case n.GetTruncateStmt() != nil:
		mode = LockAccessExclusive
		for _, r := range n.GetTruncateStmt().Relations {
			if x := r.GetRangeVar(); x != nil {
				rels = append(rels, rv(x))
			}
		}
	case n.GetVacuumStmt() != nil:
		v := n.GetVacuumStmt()
		mode = LockShareUpdateExclusive
		if v.IsVacuumcmd && hasDefElem(v.Options, "full") {
			mode = LockAccessExclusive
		}
		for _, r := range v.Rels {
			if vr := r.GetVacuumRelation(); vr != nil && vr.Relation != nil {
				rels = append(rels, rv(vr.Relation))
			}
		}
	case n.GetClusterStmt() != nil:
		mode = LockAccessExclusive
		if c := n.GetClusterStmt(); c.Relation != nil {
			rels = []tableRef{rv(c.Relation)}
		}
	case n.GetReindexStmt() != nil:
		r := n.GetReindexStmt()
		if r.Relation == nil {
			return "", nil, ""
		}
		switch {
		case hasDefElem(r.Params, "concurrently"):
			mode = LockShareUpdateExclusive
		case r.Kind == pg_query.ReindexObjectType_REINDEX_OBJECT_INDEX:
			mode, also = LockAccessExclusive, fmt.Sprintf(" (the index), %s on its table", LockShare)
		default:
			mode, also = LockShare, fmt.Sprintf(", %s on its indexes", LockAccessExclusive)
		}
		rels = []tableRef{rv(r.Relation)}
	case n.GetLockStmt() != nil:
		ls := n.GetLockStmt()
		mode = lockModeFromNumber(ls.Mode)
		for _, r := range ls.Relations {
			if x := r.GetRangeVar(); x != nil {
				rels = append(rels, rv(x))
			}
		}
	case n.GetRefreshMatViewStmt() != nil:
		r := n.GetRefreshMatViewStmt()
		mode = LockAccessExclusive
		if r.Concurrent {
			mode = LockExclusive
		}
		if r.Relation != nil {
			rels = []tableRef{rv(r.Relation)}
		}
	case n.GetCreateTrigStmt() != nil:
		if r := n.GetCreateTrigStmt().Relation; r != nil {
			mode, rels = LockShareRowExclusive, []tableRef{rv(r)}
		}
	default:
		return "", nil, ""
	}
	if len(rels) == 0 {
		return mode, nil, ""
	}
	return mode, rels, fmt.Sprintf("%s on %s%s (%s)", mode, joinTables(rels, ""), also, mode.Blocks())
}

func joinTables(ts []tableRef, empty string) string {
	if len(ts) == 0 {
		return empty
	}
	var s []string
	for _, t := range ts {
		s = append(s, display(t.schema, t.name))
	}
	return strings.Join(s, ", ")
}

func typeName(names []*pg_query.Node) string {
	var parts []string
	for _, n := range names {
		if s := n.GetString_(); s != nil {
			parts = append(parts, s.Sval)
		}
	}
	if len(parts) == 2 && parts[0] == "pg_catalog" {
		parts = parts[1:]
	}
	return strings.Join(parts, ".")
}

func funcName(fc *pg_query.FuncCall) string {
	if len(fc.Funcname) == 0 {
		return ""
	}
	if s := fc.Funcname[len(fc.Funcname)-1].GetString_(); s != nil {
		return strings.ToLower(s.Sval)
	}
	return ""
}

// Known function volatility, for defaults (immutable tables).
var (
	volatileFuncs = map[string]bool{
		"random": true, "random_normal": true, "gen_random_uuid": true, "uuid_generate_v1": true, "uuid_generate_v1mc": true,
		"uuid_generate_v4": true, "uuidv4": true, "uuidv7": true, "clock_timestamp": true, "timeofday": true,
		"nextval": true, "setval": true, "currval": true, "lastval": true, "txid_current": true, "pg_current_xact_id": true,
		"gen_random_bytes": true,
	}
	nonVolatileFuncs = map[string]bool{
		"now": true, "transaction_timestamp": true, "statement_timestamp": true, "current_setting": true,
		"lower": true, "upper": true, "coalesce": true, "concat": true, "concat_ws": true, "length": true, "md5": true,
		"jsonb_build_object": true, "json_build_object": true, "jsonb_build_array": true, "json_build_array": true,
		"array_length": true, "abs": true, "round": true, "greatest": true, "least": true, "date_trunc": true,
		"make_interval": true, "make_date": true, "to_char": true, "to_date": true, "to_timestamp": true,
		"replace": true, "substring": true, "substr": true, "trim": true, "btrim": true, "format": true,
		"nullif": true, "timezone": true, "age": true, "array": true, "int4range": true, "tstzrange": true,
	}
)

// defaultVolatility classifies a default expression: "volatile" (a known
// volatile function: every row gets its own value, so the table is
// rewritten), "unknown" (a function dbtwin does not know; user functions
// are VOLATILE unless declared otherwise) or "" (constant, stable or
// immutable: PostgreSQL 11+ stores it once, no rewrite).
func defaultVolatility(n *pg_query.Node) (vol, fn string) {
	walk(n, func(m proto.Message) bool {
		fc, ok := m.(*pg_query.FuncCall)
		if !ok {
			return true
		}
		name := funcName(fc)
		switch {
		case volatileFuncs[name]:
			vol, fn = "volatile", name
			return false
		case !nonVolatileFuncs[name] && vol == "":
			vol, fn = "unknown", name
		}
		return true
	})
	return vol, fn
}

func (l *linter) alterTable(ps parsedStmt, a *pg_query.AlterTableStmt) {
	if a.Relation == nil || a.Objtype != pg_query.ObjectType_OBJECT_TABLE {
		return
	}
	schema, table := a.Relation.Schemaname, a.Relation.Relname
	t := display(schema, table)
	key := tkey(schema, table)
	existing := !l.isNew(schema, table)
	aeLock := fmt.Sprintf("%s on %s (%s)", LockAccessExclusive, t, LockAccessExclusive.Blocks())
	for _, c := range a.Cmds {
		cmd := c.GetAlterTableCmd()
		if cmd == nil {
			continue
		}
		switch cmd.Subtype {
		case pg_query.AlterTableType_AT_AddColumn:
			if cd := cmd.Def.GetColumnDef(); cd != nil {
				l.addColumn(ps, key, t, existing, aeLock, cd)
			}
		case pg_query.AlterTableType_AT_AlterColumnType:
			if existing {
				l.alterType(ps, t, aeLock, cmd)
			}
		case pg_query.AlterTableType_AT_SetNotNull:
			l.setNotNull(ps, schema, table, existing, aeLock, cmd.Name)
		case pg_query.AlterTableType_AT_ColumnDefault:
			cs := l.addedCols[key][cmd.Name]
			if cmd.Def != nil {
				if cs != nil {
					cs.hasDefault = true
				}
				continue
			}
			if cs != nil && cs.notNull && cs.hasDefault {
				cs.hasDefault = false
				l.notNullWithoutDefault(ps, schema, table, cmd.Name, aeLock, "DROP DEFAULT leaves NOT NULL column "+t+"."+cmd.Name+" without a default")
			}
		case pg_query.AlterTableType_AT_AddConstraint:
			if con := cmd.Def.GetConstraint(); con != nil {
				l.addConstraint(ps, key, t, existing, aeLock, con)
			}
		case pg_query.AlterTableType_AT_ValidateConstraint:
			if cols, ok := l.pendingChecks[key][cmd.Name]; ok {
				l.validate(key, cols)
				delete(l.pendingChecks[key], cmd.Name)
			}
		case pg_query.AlterTableType_AT_DropColumn:
			if !existing || l.addedCols[key][cmd.Name] != nil {
				continue
			}
			qs := l.opts.Workload.UsesColumn(schema, table, cmd.Name)
			l.breaking(ps, "DT008", qs, aeLock,
				fmt.Sprintf("DROP COLUMN %s.%s", t, cmd.Name),
				"contract phase: first release application code that no longer reads or writes "+cmd.Name+" (tell ORMs to ignore it), then drop it in a later release; the drop itself is quick (no rewrite) but needs ACCESS EXCLUSIVE, so SET lock_timeout first")
		}
	}
}

func (l *linter) addColumn(ps parsedStmt, key, t string, existing bool, aeLock string, cd *pg_query.ColumnDef) {
	cs := &colState{notNull: cd.IsNotNull}
	var (
		def       *pg_query.Node
		identity  bool
		generated bool
		unique    bool
	)
	for _, c := range cd.Constraints {
		con := c.GetConstraint()
		if con == nil {
			continue
		}
		switch con.Contype {
		case pg_query.ConstrType_CONSTR_NOTNULL, pg_query.ConstrType_CONSTR_PRIMARY:
			cs.notNull = true
			unique = unique || con.Contype == pg_query.ConstrType_CONSTR_PRIMARY
		case pg_query.ConstrType_CONSTR_DEFAULT:
			def = con.RawExpr
			cs.hasDefault = true
		case pg_query.ConstrType_CONSTR_IDENTITY:
			identity = true
			cs.hasDefault = true
		case pg_query.ConstrType_CONSTR_GENERATED:
			generated = true
			cs.hasDefault = true
		case pg_query.ConstrType_CONSTR_UNIQUE:
			unique = true
		}
	}
	serial := false
	if cd.TypeName != nil {
		switch typeName(cd.TypeName.Names) {
		case "serial", "bigserial", "smallserial", "serial2", "serial4", "serial8":
			serial, cs.hasDefault = true, true
		}
	}
	if l.addedCols[key] == nil {
		l.addedCols[key] = map[string]*colState{}
	}
	l.addedCols[key][cd.Colname] = cs
	if !existing {
		return
	}
	col := t + "." + cd.Colname
	rewriteFix := "expand/contract: ADD COLUMN " + cd.Colname + " without the default (nullable), set the default for new rows with ALTER COLUMN … SET DEFAULT, backfill existing rows in batches, then add NOT NULL the safe way (CHECK … NOT VALID, VALIDATE, SET NOT NULL)"
	switch {
	case serial:
		l.add(ps, "DT007", aeLock, fmt.Sprintf("ADD COLUMN %s %s: its nextval() default is volatile, so every row of %s is rewritten under ACCESS EXCLUSIVE", col, typeName(cd.TypeName.Names), t), rewriteFix, nil)
	case identity:
		l.add(ps, "DT007", aeLock, fmt.Sprintf("ADD COLUMN %s … GENERATED AS IDENTITY fills every existing row: %s is rewritten under ACCESS EXCLUSIVE", col, t), rewriteFix, nil)
	case generated:
		l.add(ps, "DT007", aeLock, fmt.Sprintf("ADD COLUMN %s … GENERATED ALWAYS AS (…) STORED computes every existing row: %s is rewritten under ACCESS EXCLUSIVE", col, t),
			"add a plain nullable column filled by a trigger, backfill in batches, or compute the value in a view", nil)
	case def != nil:
		vol, fn := defaultVolatility(def)
		switch {
		case vol == "volatile":
			l.add(ps, "DT007", aeLock, fmt.Sprintf("ADD COLUMN %s with volatile default %s(): every row gets its own value, so %s is rewritten under ACCESS EXCLUSIVE (non-volatile defaults such as now() or a constant are free since PostgreSQL 11)", col, fn, t), rewriteFix, nil)
		case vol == "unknown":
			l.add(ps, "DT007", aeLock, fmt.Sprintf("ADD COLUMN %s with default %s(): if %s is VOLATILE (the default for user functions) %s is rewritten under ACCESS EXCLUSIVE", col, fn, fn, t), rewriteFix, nil, SeverityWarning)
		case l.opts.ServerMajor > 0 && l.opts.ServerMajor < 11:
			l.add(ps, "DT007", aeLock, fmt.Sprintf("ADD COLUMN %s with a default rewrites %s under ACCESS EXCLUSIVE before PostgreSQL 11", col, t), rewriteFix, nil)
		}
	}
	if cs.notNull && !cs.hasDefault {
		l.add(ps, "DT014", aeLock, fmt.Sprintf("ADD COLUMN %s NOT NULL without a default fails if %s has any row (existing rows would be NULL)", col, t),
			"add it with a DEFAULT (free for constants since PostgreSQL 11), or nullable, backfill, then CHECK ("+cd.Colname+" IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT and SET NOT NULL", nil)
	}
	if unique {
		l.add(ps, "DT006", aeLock, fmt.Sprintf("ADD COLUMN %s with UNIQUE / PRIMARY KEY builds its index while holding ACCESS EXCLUSIVE on %s", col, t),
			"add the column plain, CREATE UNIQUE INDEX CONCURRENTLY, then ALTER TABLE … ADD CONSTRAINT … UNIQUE USING INDEX", nil)
	}
}

// safeTypeTargets are types an ALTER COLUMN TYPE can reach without a
// rewrite from some sources (widening varchar/numeric, varchar → text,
// cidr → inet).
var safeTypeTargets = map[string]bool{"text": true, "varchar": true, "numeric": true, "varbit": true, "inet": true, "citext": true}

func (l *linter) alterType(ps parsedStmt, t, aeLock string, cmd *pg_query.AlterTableCmd) {
	cd := cmd.Def.GetColumnDef()
	if cd == nil || cd.TypeName == nil {
		return
	}
	newType := typeName(cd.TypeName.Names)
	col := t + "." + cmd.Name
	fix := "expand/contract: ADD COLUMN " + cmd.Name + "_new of the new type, keep it in sync (trigger or dual writes), backfill in batches, switch reads, then drop the old column in a later release"
	if safeTypeTargets[newType] && cd.RawDefault == nil {
		l.add(ps, "DT003", aeLock, fmt.Sprintf("ALTER COLUMN %s TYPE %s takes ACCESS EXCLUSIVE and rewrites %s and its indexes unless it only widens the type (varchar(n) → varchar(m ≥ n) or text, numeric(p,s) → numeric(p' ≥ p,s), cidr → inet)", col, deparseType(cd.TypeName), t),
			"confirm the old type: widening changes are metadata-only (still SET lock_timeout); anything else: "+fix, nil, SeverityWarning)
		return
	}
	using := ""
	if cd.RawDefault != nil {
		using = " USING …"
	}
	l.add(ps, "DT003", aeLock, fmt.Sprintf("ALTER COLUMN %s TYPE %s%s rewrites %s and rebuilds its indexes under ACCESS EXCLUSIVE: all reads and writes wait for the whole rewrite", col, deparseType(cd.TypeName), using, t), fix, nil)
}

// sqlTypeNames maps internal type names back to what users write.
var sqlTypeNames = map[string]string{"int8": "bigint", "int4": "integer", "int2": "smallint", "float8": "double precision", "float4": "real", "bool": "boolean", "bpchar": "char"}

// deparseType renders a type name with its modifiers ("varchar(20)").
func deparseType(tn *pg_query.TypeName) string {
	s := typeName(tn.Names)
	if n, ok := sqlTypeNames[s]; ok {
		s = n
	}
	var mods []string
	for _, m := range tn.Typmods {
		if c := m.GetAConst(); c != nil && c.GetIval() != nil {
			mods = append(mods, strconv.Itoa(int(c.GetIval().Ival)))
		}
	}
	if len(mods) > 0 {
		s += "(" + strings.Join(mods, ",") + ")"
	}
	if len(tn.ArrayBounds) > 0 {
		s += "[]"
	}
	return s
}

func (l *linter) setNotNull(ps parsedStmt, schema, table string, existing bool, aeLock, col string) {
	key := tkey(schema, table)
	t := display(schema, table)
	cs := l.addedCols[key][col]
	if cs != nil {
		if !cs.hasDefault {
			l.notNullWithoutDefault(ps, schema, table, col, aeLock, "SET NOT NULL on "+t+"."+col+" (added without a default)")
		}
		cs.notNull = true
	}
	if !existing {
		return
	}
	if l.validChecks[key][col] && (l.opts.ServerMajor == 0 || l.opts.ServerMajor >= 12) {
		return
	}
	l.add(ps, "DT004", aeLock, fmt.Sprintf("SET NOT NULL on %s.%s scans the whole table under ACCESS EXCLUSIVE to prove there is no NULL", t, col),
		fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s_%s_not_null CHECK (%s IS NOT NULL) NOT VALID; then, in a later transaction, ALTER TABLE %s VALIDATE CONSTRAINT %s_%s_not_null (SHARE UPDATE EXCLUSIVE: reads and writes go on); then SET NOT NULL skips the scan (PostgreSQL 12+) and the CHECK can be dropped", t, table, col, col, t, table, col), nil)
}

// notNullWithoutDefault reports DT019, cross-checked with the workload's
// INSERTs that leave the column out.
func (l *linter) notNullWithoutDefault(ps parsedStmt, schema, table, col, aeLock, what string) {
	fix := "keep a DEFAULT on " + col + " (or fill it in a BEFORE INSERT trigger) until no deployed version inserts without it; drop the default in the contract phase"
	if l.opts.Workload == nil {
		l.add(ps, "DT019", aeLock, what+": INSERTs of the old application that do not name it will fail with a NOT NULL violation", fix, nil)
		return
	}
	qs := l.opts.Workload.InsertsWithout(schema, table, col)
	if len(qs) == 0 {
		l.add(ps, "DT019", aeLock, what+": no captured INSERT of the old application leaves it out", fix, nil, SeverityInfo)
		return
	}
	l.add(ps, "DT019", aeLock, fmt.Sprintf("%s: %d captured INSERTs of the old application leave it out and will fail with a NOT NULL violation", what, len(qs)), fix, qs, SeverityError)
}

func (l *linter) addConstraint(ps parsedStmt, key, t string, existing bool, aeLock string, con *pg_query.Constraint) {
	name := con.Conname
	if name == "" {
		name = "(unnamed)"
	}
	switch con.Contype {
	case pg_query.ConstrType_CONSTR_CHECK:
		cols := notNullColumns(con.RawExpr)
		if con.SkipValidation {
			if l.pendingChecks[key] == nil {
				l.pendingChecks[key] = map[string][]string{}
			}
			l.pendingChecks[key][con.Conname] = cols
		} else {
			l.validate(key, cols)
		}
		if existing && !con.SkipValidation {
			l.add(ps, "DT005", aeLock, fmt.Sprintf("ADD CONSTRAINT %s CHECK on %s without NOT VALID scans the whole table under ACCESS EXCLUSIVE", name, t),
				"ADD CONSTRAINT … CHECK (…) NOT VALID (brief lock, no scan; new rows are checked), then ALTER TABLE … VALIDATE CONSTRAINT "+name+" in a later transaction (SHARE UPDATE EXCLUSIVE: reads and writes go on)", nil)
		}
	case pg_query.ConstrType_CONSTR_FOREIGN:
		if existing && !con.SkipValidation {
			ref := ""
			if con.Pktable != nil {
				ref = display(con.Pktable.Schemaname, con.Pktable.Relname)
			}
			lock := fmt.Sprintf("%s on %s and %s (%s)", LockShareRowExclusive, t, ref, LockShareRowExclusive.Blocks())
			l.add(ps, "DT005", lock, fmt.Sprintf("ADD CONSTRAINT %s FOREIGN KEY on %s without NOT VALID checks every row while blocking writes to %s and %s", name, t, t, ref),
				"ADD CONSTRAINT … FOREIGN KEY … NOT VALID (brief lock, no scan; new rows are checked), then ALTER TABLE … VALIDATE CONSTRAINT "+name+" in a later transaction (SHARE UPDATE EXCLUSIVE on "+t+", ROW SHARE on "+ref+")", nil)
		}
	case pg_query.ConstrType_CONSTR_PRIMARY, pg_query.ConstrType_CONSTR_UNIQUE:
		if existing && con.Indexname == "" {
			kind := "UNIQUE"
			if con.Contype == pg_query.ConstrType_CONSTR_PRIMARY {
				kind = "PRIMARY KEY"
			}
			what, conName := "ADD "+kind, "<name>"
			if con.Conname != "" {
				what, conName = "ADD CONSTRAINT "+con.Conname+" "+kind, con.Conname
			}
			l.add(ps, "DT006", aeLock, fmt.Sprintf("%s on %s builds its index while holding ACCESS EXCLUSIVE: all reads and writes wait for the build", what, t),
				fmt.Sprintf("CREATE UNIQUE INDEX CONCURRENTLY first (%s), then ALTER TABLE %s ADD CONSTRAINT %s %s USING INDEX <index> (a brief lock, no build)%s", noTxHow(l.mig.Format), t, conName, kind, pkNote(con.Contype)), nil)
		}
	case pg_query.ConstrType_CONSTR_EXCLUSION:
		if existing {
			l.add(ps, "DT006", aeLock, fmt.Sprintf("ADD CONSTRAINT %s EXCLUDE on %s builds its index while holding ACCESS EXCLUSIVE", name, t),
				"exclusion constraints cannot use a prebuilt index: add it while the table is small, in a maintenance window, or on a new table that replaces this one", nil)
		}
	}
}

func pkNote(t pg_query.ConstrType) string {
	if t == pg_query.ConstrType_CONSTR_PRIMARY {
		return "; the key columns must be NOT NULL already (add that the safe way first)"
	}
	return ""
}

func (l *linter) validate(key string, cols []string) {
	if len(cols) == 0 {
		return
	}
	if l.validChecks[key] == nil {
		l.validChecks[key] = map[string]bool{}
	}
	for _, c := range cols {
		l.validChecks[key][c] = true
	}
}

// notNullColumns returns the columns a CHECK expression proves NOT NULL:
// "col IS NOT NULL", possibly AND-ed.
func notNullColumns(n *pg_query.Node) []string {
	if n == nil {
		return nil
	}
	if nt := n.GetNullTest(); nt != nil && nt.Nulltesttype == pg_query.NullTestType_IS_NOT_NULL {
		if cr := nt.Arg.GetColumnRef(); cr != nil && len(cr.Fields) > 0 {
			if s := cr.Fields[len(cr.Fields)-1].GetString_(); s != nil {
				return []string{s.Sval}
			}
		}
	}
	if be := n.GetBoolExpr(); be != nil && be.Boolop == pg_query.BoolExprType_AND_EXPR {
		var out []string
		for _, a := range be.Args {
			out = append(out, notNullColumns(a)...)
		}
		return out
	}
	return nil
}

func (l *linter) rename(ps parsedStmt, r *pg_query.RenameStmt) {
	if r.Relation == nil {
		return
	}
	schema, table := r.Relation.Schemaname, r.Relation.Relname
	t := display(schema, table)
	aeLock := fmt.Sprintf("%s on %s (%s)", LockAccessExclusive, t, LockAccessExclusive.Blocks())
	switch r.RenameType {
	case pg_query.ObjectType_OBJECT_COLUMN:
		key := tkey(schema, table)
		if l.isNew(schema, table) || l.addedCols[key][r.Subname] != nil {
			if cs := l.addedCols[key][r.Subname]; cs != nil {
				l.addedCols[key][r.Newname] = cs
			}
			return
		}
		qs := l.opts.Workload.UsesColumn(schema, table, r.Subname)
		l.breaking(ps, "DT010", qs, aeLock,
			fmt.Sprintf("RENAME COLUMN %s.%s TO %s", t, r.Subname, r.Newname),
			fmt.Sprintf("expand/contract: ADD COLUMN %s, keep both columns in sync (trigger or dual writes), backfill, move reads and writes to %s in a release, and drop %s in a later one", r.Newname, r.Newname, r.Subname))
	case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_MATVIEW:
		if l.isNew(schema, table) {
			l.created[tkey(schema, r.Newname)] = true
			return
		}
		qs := l.opts.Workload.UsesTable(schema, table)
		l.breaking(ps, "DT011", qs, aeLock,
			fmt.Sprintf("RENAME %s TO %s", t, r.Newname),
			fmt.Sprintf("expand/contract: in one transaction ALTER TABLE %s RENAME TO %s and CREATE VIEW %s AS SELECT * FROM %s (a simple view stays writable) for the old application; drop the view once no deployed version uses the old name", t, r.Newname, t, r.Newname))
	}
}

func (l *linter) drop(ps parsedStmt, d *pg_query.DropStmt) {
	switch d.RemoveType {
	case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_MATVIEW:
		for _, o := range d.Objects {
			schema, name := qualifiedName(o)
			if name == "" || l.isNew(schema, name) {
				continue
			}
			t := display(schema, name)
			qs := l.opts.Workload.UsesTable(schema, name)
			l.breaking(ps, "DT009", qs, fmt.Sprintf("%s on %s (%s)", LockAccessExclusive, t, LockAccessExclusive.Blocks()),
				"DROP "+strings.TrimPrefix(d.RemoveType.String(), "OBJECT_")+" "+t,
				"contract phase: release code that no longer uses "+t+" first and drop it in a later release (renaming it to "+name+"_deprecated for a release finds stragglers)")
		}
	case pg_query.ObjectType_OBJECT_INDEX:
		if d.Concurrent {
			return
		}
		for _, o := range d.Objects {
			schema, name := qualifiedName(o)
			if name == "" || l.createdIdx[tkey(schema, name)] {
				continue
			}
			l.add(ps, "DT015", fmt.Sprintf("%s on the table of %s (%s)", LockAccessExclusive, display(schema, name), LockAccessExclusive.Blocks()),
				fmt.Sprintf("DROP INDEX %s without CONCURRENTLY takes ACCESS EXCLUSIVE on its table: it waits behind running queries and everything queues behind it", display(schema, name)),
				"DROP INDEX CONCURRENTLY "+display(schema, name)+" "+noTxHow(l.mig.Format), nil)
		}
	}
}

// breaking reports a DROP or RENAME, graded by the workload: an error
// naming the captured queries it breaks; with a workload that does not
// use the object, a lower severity; without a workload, the rule's own.
func (l *linter) breaking(ps parsedStmt, id string, qs []QueryRef, lock, what, fix string) {
	r := ruleByID(id)
	switch {
	case l.opts.Workload == nil:
		l.add(ps, id, lock, what+": the old application still running during the deploy fails if it uses it (no captured workload to check)", fix, nil)
	case len(qs) > 0:
		l.add(ps, id, lock, fmt.Sprintf("%s breaks %d captured queries of the old application", what, len(qs)), fix, qs, SeverityError)
	default:
		sev := SeverityInfo
		if r.Severity == SeverityError {
			sev = SeverityWarning
		}
		l.add(ps, id, lock, fmt.Sprintf("%s: no captured query of the old application uses it (%d statements checked)", what, l.opts.Workload.Statements), fix, nil, sev)
	}
}
