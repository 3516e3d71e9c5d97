package sqlinfo

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/pganalyze/pg_query_go/v6/parser"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Class is what kind of effect a statement has.
type Class string

// The statement classes. When a text holds several statements, its class is
// the strongest among them, in the order DDL, Write, Read, TCL, Other.
const (
	// Read statements return data and change nothing: SELECT (without INTO
	// and without data-modifying WITH), SHOW, FETCH, DECLARE CURSOR,
	// EXPLAIN without ANALYZE of a write, COPY … TO.
	Read Class = "read"
	// Write statements change rows: INSERT, UPDATE, DELETE, MERGE, COPY …
	// FROM, TRUNCATE, REFRESH MATERIALIZED VIEW, and CALL and DO, whose
	// bodies may write.
	Write Class = "write"
	// DDL statements change the schema or privileges: CREATE, ALTER, DROP,
	// COMMENT, GRANT, REVOKE, SELECT INTO …
	DDL Class = "ddl"
	// TCL statements control transactions: BEGIN, COMMIT, ROLLBACK,
	// SAVEPOINT, PREPARE TRANSACTION …
	TCL Class = "tcl"
	// Other is everything else: SET, RESET, PREPARE, EXECUTE, DEALLOCATE,
	// LISTEN, NOTIFY, VACUUM, ANALYZE, LOCK, and empty text.
	Other Class = "other"
	// Unknown is the class of text that does not parse.
	Unknown Class = "unknown"
)

// classRank orders classes for combining several statements: the highest
// rank wins.
var classRank = map[Class]int{Unknown: 0, Other: 1, TCL: 2, Read: 3, Write: 4, DDL: 5}

// Info describes a SQL text. The zero value describes empty text.
type Info struct {
	// Fingerprint identifies the statement regardless of constants,
	// whitespace and comments (pg_query's fingerprint, 16 hex digits).
	// Empty when the text does not parse.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Class is the strongest class among the statements in the text.
	Class Class `json:"class"`
	// Statements is how many statements the text holds (0 for empty text
	// or only comments).
	Statements int `json:"statements"`
	// Types names each statement's parse node, in order ("SelectStmt",
	// "InsertStmt", "TransactionStmt" …).
	Types []string `json:"types,omitempty"`
	// HasOrderBy is true when the text holds at least one top-level SELECT
	// (or VALUES, or set operation) and every one of them has a top-level
	// ORDER BY: its rows come in a defined order.
	HasOrderBy bool `json:"has_order_by,omitempty"`
	// Volatile lists, sorted and without duplicates, the functions and SQL
	// value functions used anywhere in the text whose value differs between
	// runs ("now", "random", "nextval", "current_timestamp" …), lowercase
	// and without schema.
	Volatile []string `json:"volatile,omitempty"`
	// LimitWithoutOrder is true when some SELECT in the text, at any depth,
	// has LIMIT, OFFSET or FETCH FIRST without an ORDER BY at the same
	// level, so which rows it picks depends on the plan.
	LimitWithoutOrder bool `json:"limit_without_order,omitempty"`
	// CopyFromStdin is true when the text holds a COPY … FROM STDIN, whose
	// rows travel outside the SQL text (and so are not in server logs).
	CopyFromStdin bool `json:"copy_from_stdin,omitempty"`
	// ParseError is set when the text does not parse; the other fields are
	// then zero except Class, which is Unknown.
	ParseError *ParseError `json:"parse_error,omitempty"`
}

// ParseError is a syntax error reported by the PostgreSQL parser.
type ParseError struct {
	// Message is the parser's message ("syntax error at or near \"SELEC\"").
	Message string `json:"message"`
	// Position is the 1-based character offset of the error in the text,
	// 0 when unknown.
	Position int `json:"position,omitempty"`
}

// Error says what the parser rejected, and where.
func (e *ParseError) Error() string {
	if e.Position > 0 {
		return fmt.Sprintf("parse sql: %s (at character %d)", e.Message, e.Position)
	}
	return "parse sql: " + e.Message
}

// volatileFuncs are functions whose result differs between two runs of the
// same statement on identical databases, by design (clock, randomness,
// sequence or transaction id, backend identity).
var volatileFuncs = map[string]bool{
	"now": true, "clock_timestamp": true, "statement_timestamp": true,
	"transaction_timestamp": true, "timeofday": true,
	"random": true, "random_normal": true, "setseed": true,
	"gen_random_uuid": true, "uuid_generate_v1": true, "uuid_generate_v1mc": true,
	"uuid_generate_v4": true, "gen_random_bytes": true, "gen_salt": true,
	"nextval": true, "currval": true, "lastval": true, "setval": true,
	"txid_current": true, "txid_current_if_assigned": true, "txid_current_snapshot": true,
	"pg_current_xact_id": true, "pg_current_xact_id_if_assigned": true,
	"pg_current_snapshot": true, "pg_backend_pid": true,
	"pg_postmaster_start_time": true, "pg_conf_load_time": true,
	"inet_client_port": true, "pg_current_wal_lsn": true, "pg_current_wal_insert_lsn": true,
}

// sqlValueFuncs maps the SQL-standard value functions that read the clock.
var sqlValueFuncs = map[pg_query.SQLValueFunctionOp]string{
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_DATE:        "current_date",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIME:        "current_time",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIME_N:      "current_time",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP:   "current_timestamp",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP_N: "current_timestamp",
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIME:           "localtime",
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIME_N:         "localtime",
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP:      "localtimestamp",
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP_N:    "localtimestamp",
}

// timeLiterals are the special date/time input strings that the server
// turns into the current time when a literal is cast ('now'::timestamptz).
var timeLiterals = map[string]bool{"now": true, "today": true, "tomorrow": true, "yesterday": true}

// Analyze parses sql with the PostgreSQL parser and describes it. It is a
// pure function: no cache, no state, safe for concurrent use.
//
// When sql does not parse, Analyze returns an Info with Class Unknown and
// ParseError set, and that same *ParseError as the error.
func Analyze(sql string) (Info, error) {
	tree, err := pg_query.Parse(sql)
	if err != nil {
		pe := toParseError(err)
		return Info{Class: Unknown, ParseError: pe}, pe
	}
	info := Info{Class: Other, Statements: len(tree.Stmts)}
	if len(tree.Stmts) == 0 {
		return info, nil
	}
	fp, err := pg_query.Fingerprint(sql)
	if err != nil {
		pe := toParseError(err)
		return Info{Class: Unknown, ParseError: pe}, pe
	}
	info.Fingerprint = fp
	info.Class = Unknown
	volatile := map[string]bool{}
	selects, ordered := 0, 0
	for _, raw := range tree.Stmts {
		n := raw.GetStmt()
		typ := nodeType(n)
		info.Types = append(info.Types, typ)
		w := walker{volatile: volatile}
		w.walk(n.ProtoReflect())
		if w.limitWithoutOrder {
			info.LimitWithoutOrder = true
		}
		if w.copyFromStdin {
			info.CopyFromStdin = true
		}
		c := classify(n, typ, w.writes)
		if classRank[c] > classRank[info.Class] {
			info.Class = c
		}
		if s := n.GetSelectStmt(); s != nil && s.IntoClause == nil {
			selects++
			if len(s.SortClause) > 0 {
				ordered++
			}
		}
	}
	info.HasOrderBy = selects > 0 && selects == ordered
	for f := range volatile {
		info.Volatile = append(info.Volatile, f)
	}
	sort.Strings(info.Volatile)
	return info, nil
}

// Fingerprint returns pg_query's fingerprint of sql (16 hex digits), the
// same as Analyze's, for callers that need nothing else: it is several times
// cheaper than Analyze.
func Fingerprint(sql string) (string, error) {
	fp, err := pg_query.Fingerprint(sql)
	if err != nil {
		return "", toParseError(err)
	}
	return fp, nil
}

// CopyFromStdin reports whether sql holds a COPY … FROM STDIN statement (at
// the top level, where COPY can be), whose rows travel outside the SQL
// text. It parses sql but skips the rest of Analyze's work; text that does
// not parse holds no COPY.
func CopyFromStdin(sql string) bool {
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return false
	}
	for _, raw := range tree.Stmts {
		if c := raw.GetStmt().GetCopyStmt(); c != nil && c.IsFrom && !c.IsProgram && c.Filename == "" {
			return true
		}
	}
	return false
}

// Normalize returns sql with its constants replaced by $n placeholders
// ("SELECT * FROM t WHERE id = $1"), for showing a statement without its
// data. Comments and formatting are kept.
func Normalize(sql string) (string, error) {
	out, err := pg_query.Normalize(sql)
	if err != nil {
		return "", toParseError(err)
	}
	return out, nil
}

func toParseError(err error) *ParseError {
	var pe *pgparser.Error
	if errors.As(err, &pe) {
		return &ParseError{Message: pe.Message, Position: pe.Cursorpos}
	}
	return &ParseError{Message: err.Error()}
}

// nodeType returns the parse node's message name ("SelectStmt").
func nodeType(n *pg_query.Node) string {
	m := n.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("node"))
	if fd == nil {
		return ""
	}
	return string(fd.Message().Name())
}

// classify returns the class of one top-level statement; writes says whether
// a data-modifying statement appears anywhere inside it.
func classify(n *pg_query.Node, typ string, writes bool) Class {
	switch typ {
	case "SelectStmt":
		if n.GetSelectStmt().IntoClause != nil {
			return DDL
		}
		if writes {
			return Write
		}
		return Read
	case "ExplainStmt":
		analyze := false
		for _, o := range n.GetExplainStmt().Options {
			if d := o.GetDefElem(); d != nil && strings.EqualFold(d.Defname, "analyze") {
				analyze = !isFalse(d.Arg)
			}
		}
		if analyze && writes {
			return Write
		}
		return Read
	case "VariableShowStmt", "FetchStmt":
		return Read
	case "DeclareCursorStmt":
		if writes {
			return Write
		}
		return Read
	case "CopyStmt":
		if n.GetCopyStmt().IsFrom {
			return Write
		}
		if writes {
			return Write
		}
		return Read
	case "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "TruncateStmt",
		"CallStmt", "DoStmt", "RefreshMatViewStmt":
		return Write
	case "TransactionStmt":
		return TCL
	case "IndexStmt", "ViewStmt", "RuleStmt", "DefineStmt", "CompositeTypeStmt",
		"RenameStmt", "CommentStmt", "GrantStmt", "GrantRoleStmt", "SecLabelStmt",
		"ReassignOwnedStmt", "DropOwnedStmt", "ImportForeignSchemaStmt", "CreateTableAsStmt":
		return DDL
	}
	if strings.HasPrefix(typ, "Create") || strings.HasPrefix(typ, "Alter") || strings.HasPrefix(typ, "Drop") {
		return DDL
	}
	return Other
}

// isFalse reports whether a DefElem argument spells false (EXPLAIN
// (ANALYZE false)).
func isFalse(arg *pg_query.Node) bool {
	if arg == nil {
		return false
	}
	if b := arg.GetBoolean(); b != nil {
		return !b.Boolval
	}
	if c := arg.GetAConst(); c != nil {
		if b := c.GetBoolval(); b != nil {
			return !b.Boolval
		}
		if s := c.GetSval(); s != nil {
			v := strings.ToLower(s.Sval)
			return v == "false" || v == "off" || v == "0" || v == "no"
		}
		if i := c.GetIval(); i != nil {
			return i.Ival == 0
		}
	}
	if s := arg.GetString_(); s != nil {
		v := strings.ToLower(s.Sval)
		return v == "false" || v == "off" || v == "0" || v == "no"
	}
	return false
}

// walker visits every message of a parse tree and records what Analyze
// reports about it.
type walker struct {
	volatile          map[string]bool
	writes            bool
	limitWithoutOrder bool
	copyFromStdin     bool
}

func (w *walker) walk(m protoreflect.Message) {
	switch x := m.Interface().(type) {
	case *pg_query.FuncCall:
		if name := funcName(x.Funcname); name != "" {
			if volatileFuncs[name] || (name == "age" && len(x.Args) == 1) {
				w.volatile[name] = true
			}
		}
	case *pg_query.SQLValueFunction:
		if name, ok := sqlValueFuncs[x.Op]; ok {
			w.volatile[name] = true
		}
	case *pg_query.TypeCast:
		if c := x.Arg.GetAConst(); c != nil {
			if s := c.GetSval(); s != nil && timeLiterals[strings.ToLower(strings.TrimSpace(s.Sval))] {
				w.volatile["'"+strings.ToLower(strings.TrimSpace(s.Sval))+"'"] = true
			}
		}
	case *pg_query.SelectStmt:
		if (x.LimitCount != nil || x.LimitOffset != nil) && len(x.SortClause) == 0 {
			w.limitWithoutOrder = true
		}
	case *pg_query.InsertStmt, *pg_query.UpdateStmt, *pg_query.DeleteStmt, *pg_query.MergeStmt:
		w.writes = true
	case *pg_query.CopyStmt:
		if x.IsFrom && !x.IsProgram && x.Filename == "" {
			w.copyFromStdin = true
		}
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		switch {
		case fd.IsMap():
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				w.walk(l.Get(i).Message())
			}
		default:
			w.walk(v.Message())
		}
		return true
	})
}

// funcName returns the unqualified, lowercase name of a function call
// ("pg_catalog.now" → "now").
func funcName(parts []*pg_query.Node) string {
	if len(parts) == 0 {
		return ""
	}
	if s := parts[len(parts)-1].GetString_(); s != nil {
		return strings.ToLower(s.Sval)
	}
	return ""
}
