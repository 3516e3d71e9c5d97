package migrate

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// lineIndex maps byte offsets of a text to 1-based line numbers.
type lineIndex []int // byte offset where each line starts

func newLineIndex(src string) lineIndex {
	idx := lineIndex{0}
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			idx = append(idx, i+1)
		}
	}
	return idx
}

// line returns the 1-based line holding byte offset off.
func (l lineIndex) line(off int) int {
	return sort.Search(len(l), func(i int) bool { return l[i] > off })
}

// splitSQL splits src[start:end] into statements with the PostgreSQL
// parser (the statement boundaries pg_query's SplitWithParser uses, kept
// as offsets so every statement knows its line in src). When the text does
// not parse — the server will say why when it runs — the boundaries come
// from the PostgreSQL scanner instead (top-level semicolons), and when even
// that fails the whole text is one statement.
func splitSQL(src string, lines lineIndex, start, end int) []Statement {
	text := src[start:end]
	var ranges [][2]int
	if res, err := pg_query.Parse(text); err == nil {
		for _, rs := range res.Stmts {
			a := int(rs.StmtLocation)
			b := len(text)
			if rs.StmtLen > 0 {
				b = a + int(rs.StmtLen)
			}
			if a < 0 || a > b || b > len(text) {
				continue
			}
			ranges = append(ranges, [2]int{a, b})
		}
	} else if sc, err := pg_query.Scan(text); err == nil {
		prev := 0
		for _, tk := range sc.Tokens {
			if tk.Token == pg_query.Token_ASCII_59 && int(tk.Start) >= prev && int(tk.End) <= len(text) {
				ranges = append(ranges, [2]int{prev, int(tk.Start)})
				prev = int(tk.End)
			}
		}
		ranges = append(ranges, [2]int{prev, len(text)})
	} else {
		ranges = [][2]int{{0, len(text)}}
	}
	var out []Statement
	for _, r := range ranges {
		if st, ok := trimStatement(src, lines, start+r[0], start+r[1]); ok {
			out = append(out, st)
		}
	}
	return out
}

// trimStatement returns src[a:b] without leading blanks and comments and
// without trailing blanks, with the line it starts on; ok is false when
// nothing but blanks and comments is left.
func trimStatement(src string, lines lineIndex, a, b int) (Statement, bool) {
	s := skipSpaceAndComments(src, a, b)
	body := strings.TrimRightFunc(src[s:b], unicode.IsSpace)
	if body == "" || body == ";" {
		return Statement{}, false
	}
	return Statement{SQL: body, Line: lines.line(s)}, true
}

// skipSpaceAndComments returns the offset of the first byte of src[a:b]
// that is neither white space nor inside a -- or (nested) /* */ comment.
func skipSpaceAndComments(src string, a, b int) int {
	i := a
	for i < b {
		r, n := utf8.DecodeRuneInString(src[i:b])
		switch {
		case unicode.IsSpace(r):
			i += n
		case strings.HasPrefix(src[i:b], "--"):
			nl := strings.IndexByte(src[i:b], '\n')
			if nl < 0 {
				return b
			}
			i += nl + 1
		case strings.HasPrefix(src[i:b], "/*"):
			depth := 0
			j := i
			for j < b {
				if strings.HasPrefix(src[j:b], "/*") {
					depth++
					j += 2
				} else if strings.HasPrefix(src[j:b], "*/") {
					depth--
					j += 2
					if depth == 0 {
						break
					}
				} else {
					j++
				}
			}
			if depth != 0 {
				return b
			}
			i = j
		default:
			return i
		}
	}
	return b
}

// parsedStmt is one statement parse tree with its line in the file.
type parsedStmt struct {
	node *pg_query.Node
	sql  string
	line int
}

// parseStatement parses st (which may hold several statements, as a goose
// StatementBegin/End block does) into trees with their file lines.
func parseStatement(st Statement) ([]parsedStmt, error) {
	res, err := pg_query.Parse(st.SQL)
	if err != nil {
		return nil, err
	}
	lines := newLineIndex(st.SQL)
	out := make([]parsedStmt, 0, len(res.Stmts))
	for _, rs := range res.Stmts {
		a := int(rs.StmtLocation)
		b := len(st.SQL)
		if rs.StmtLen > 0 {
			b = a + int(rs.StmtLen)
		}
		if a < 0 || a > b || b > len(st.SQL) {
			a, b = 0, len(st.SQL)
		}
		s := skipSpaceAndComments(st.SQL, a, b)
		out = append(out, parsedStmt{
			node: rs.Stmt,
			sql:  strings.TrimSpace(st.SQL[s:b]),
			line: st.Line + lines.line(s) - 1,
		})
	}
	return out, nil
}

// lineOfPosition returns the 1-based line within sql of a 1-based
// character position (as in a PostgreSQL error's Position), or 1.
func lineOfPosition(sql string, pos int) int {
	if pos <= 0 {
		return 1
	}
	line, n := 1, 0
	for _, r := range sql {
		n++
		if n >= pos {
			break
		}
		if r == '\n' {
			line++
		}
	}
	return line
}

// oneLine collapses white space and cuts s to at most n runes, with "…".
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
