package replay

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Prefix is a compiled log_line_prefix: it splits a stderr log line into the
// values the prefix's escapes printed and the message after it.
//
// CompilePrefix accepts PostgreSQL's own escape syntax (see the
// log_line_prefix documentation): %a application, %u user, %d database,
// %r host(port), %h host, %b backend type, %p pid, %P parallel leader pid,
// %t timestamp, %m timestamp with milliseconds, %n epoch timestamp, %i
// command tag, %e SQLSTATE, %c session id, %l line number, %s session start,
// %v virtual transaction id, %x transaction id, %Q query id, %q (the rest is
// printed only by session processes), %% a percent sign, each with optional
// padding (%-10u). Unknown escapes print nothing, as in PostgreSQL.
//
// Matching is exact about fixed-format values (timestamps, numbers,
// SQLSTATEs) and lets free-text values (user, database, application, host,
// command tag, backend type) be anything, backtracking over where they end
// until the rest of the prefix and a severity ("LOG:  ", "ERROR:  " …)
// follow. A value that itself contains the literal text that follows it in
// the prefix can still be split wrongly; prefer prefixes that end free-text
// escapes with a character that cannot appear in them, or put %c in.
type Prefix struct {
	src  string
	toks []prefixTok
	has  [prefixFieldCount]bool
}

type prefixTok struct {
	kind byte   // 0: literal; else the escape letter
	lit  string // literal text
	pad  int    // padding width (negative: left-justified), 0 none
}

// The values a prefix can hold, indexes into prefixMatch.vals.
const (
	pfTime = iota // %m, %t or %n
	pfPID
	pfSession
	pfLine
	pfUser
	pfDB
	pfApp
	pfHost
	pfRemote
	pfSessStart
	pfVXID
	pfXID
	pfState
	pfTag
	pfBackend
	pfQueryID
	pfLeader
	prefixFieldCount
)

// prefixFieldOf maps escape letters to the value they print.
var prefixFieldOf = map[byte]int{
	'm': pfTime, 't': pfTime, 'n': pfTime, 'p': pfPID, 'c': pfSession, 'l': pfLine,
	'u': pfUser, 'd': pfDB, 'a': pfApp, 'h': pfHost, 'r': pfRemote, 's': pfSessStart,
	'v': pfVXID, 'x': pfXID, 'e': pfState, 'i': pfTag, 'b': pfBackend, 'Q': pfQueryID,
	'P': pfLeader,
}

// CompilePrefix compiles a log_line_prefix. Any prefix PostgreSQL accepts
// compiles; one without %c or %p puts every line in one session. It fails
// only on absurd padding.
func CompilePrefix(s string) (*Prefix, error) {
	p := &Prefix{src: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			p.toks = append(p.toks, prefixTok{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			lit.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			break // a lone % at the end prints nothing
		}
		pad := 0
		neg := false
		if s[i] == '-' {
			neg = true
			i++
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			pad = pad*10 + int(s[i]-'0')
			if pad > 10000 {
				return nil, fmt.Errorf("compile log_line_prefix %q: padding too wide", s)
			}
			i++
		}
		if i >= len(s) {
			break
		}
		if neg {
			pad = -pad
		}
		e := s[i]
		switch {
		case e == '%':
			lit.WriteByte('%')
		case e == 'q':
			flush()
			p.toks = append(p.toks, prefixTok{kind: 'q'})
		default:
			f, ok := prefixFieldOf[e]
			if !ok {
				continue // PostgreSQL ignores unknown escapes
			}
			flush()
			p.toks = append(p.toks, prefixTok{kind: e, pad: pad})
			p.has[f] = true
		}
	}
	flush()
	return p, nil
}

// String returns the prefix as given to CompilePrefix.
func (p *Prefix) String() string { return p.src }

// Has reports whether the prefix prints the escape letter's value ('c',
// 'p', 'm' …).
func (p *Prefix) Has(escape byte) bool {
	f, ok := prefixFieldOf[escape]
	return ok && p.has[f]
}

// prefixMatch holds where each value of a matched prefix is in the line.
type prefixMatch struct {
	vals     [prefixFieldCount][2]int // start, end; end < 0: absent
	timeKind byte                     // which time escape matched
	sevStart int                      // where the severity begins
	sev      string                   // the severity ("LOG", "ERROR" …)
	msgStart int                      // where the message begins
}

func (m *prefixMatch) reset() {
	for i := range m.vals {
		m.vals[i] = [2]int{0, -1}
	}
	m.timeKind = 0
}

// value returns the matched value of field f, trimmed of padding, or nil.
func (m *prefixMatch) value(line []byte, f int) []byte {
	v := m.vals[f]
	if v[1] < 0 {
		return nil
	}
	b := line[v[0]:v[1]]
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b // empty but not nil when the escape printed nothing
}

// matchBudget bounds the backtracking steps spent on one line, so that a
// pathological line costs microseconds, not seconds.
const matchBudget = 4096

// maxPrefixLen bounds how far into a line a prefix may reach.
const maxPrefixLen = 8192

// match matches the prefix and the severity at the start of line.
func (p *Prefix) match(line []byte, m *prefixMatch) bool {
	m.reset()
	budget := matchBudget
	if len(line) > maxPrefixLen+32 {
		line = line[:maxPrefixLen+32]
	}
	end, ok := p.matchFrom(line, 0, 0, m, &budget)
	if !ok {
		return false
	}
	m.sevStart = end
	return true
}

// matchFrom matches tokens from ti on at line[pos:] and returns where the
// message severity starts.
func (p *Prefix) matchFrom(line []byte, ti, pos int, m *prefixMatch, budget *int) (int, bool) {
	*budget--
	if *budget < 0 {
		return 0, false
	}
	if ti == len(p.toks) {
		sev, n := severityAt(line[pos:])
		if n == 0 {
			return 0, false
		}
		m.sev = sev
		m.msgStart = pos + n
		return pos, true
	}
	t := &p.toks[ti]
	switch t.kind {
	case 0:
		if !bytes.HasPrefix(line[pos:], []byte(t.lit)) {
			return 0, false
		}
		return p.matchFrom(line, ti+1, pos+len(t.lit), m, budget)
	case 'q':
		saved := m.vals
		if end, ok := p.matchFrom(line, ti+1, pos, m, budget); ok {
			return end, true
		}
		// A process that is not a session stops printing at %q.
		m.vals = saved
		sev, n := severityAt(line[pos:])
		if n == 0 {
			return 0, false
		}
		m.sev = sev
		m.msgStart = pos + n
		return pos, true
	}
	f := prefixFieldOf[t.kind]
	if isFreeText(t.kind) {
		// Shortest first: try each place the value could end.
		var next byte
		nextIsLit := ti+1 < len(p.toks) && p.toks[ti+1].kind == 0
		if nextIsLit {
			next = p.toks[ti+1].lit[0]
		}
		atEnd := ti+1 == len(p.toks)
		for end := pos; end <= len(line) && end-pos <= maxPrefixLen; end++ {
			if *budget--; *budget < 0 {
				return 0, false
			}
			if nextIsLit {
				i := bytes.IndexByte(line[end:], next)
				if i < 0 {
					return 0, false
				}
				end += i
			} else if atEnd && (end >= len(line) || line[end] < 'A' || line[end] > 'Z') {
				continue
			}
			m.vals[f] = [2]int{pos, end}
			if e, ok := p.matchFrom(line, ti+1, end, m, budget); ok {
				return e, true
			}
		}
		return 0, false
	}
	start := pos
	if t.pad > 0 {
		for start < len(line) && line[start] == ' ' {
			start++
		}
	}
	n := fixedLen(t.kind, line[start:])
	if n < 0 {
		return 0, false
	}
	end := start + n
	next := end
	if t.pad < 0 {
		for next < len(line) && next-start < -t.pad && line[next] == ' ' {
			next++
		}
	}
	m.vals[f] = [2]int{start, end}
	if f == pfTime {
		m.timeKind = t.kind
	}
	return p.matchFrom(line, ti+1, next, m, budget)
}

// isFreeText reports whether an escape prints text of any shape.
func isFreeText(e byte) bool {
	switch e {
	case 'u', 'd', 'a', 'h', 'r', 'i', 'b':
		return true
	}
	return false
}

// fixedLen returns the length of the value of a fixed-format escape at the
// start of b, or -1 when b does not start with one.
func fixedLen(e byte, b []byte) int {
	switch e {
	case 'm':
		n := timestampLen(b)
		if n == 0 || !bytes.Contains(b[:n], []byte(".")) {
			return -1
		}
		return n
	case 't', 's':
		n := timestampLen(b)
		if n == 0 || bytes.Contains(b[:n], []byte(".")) {
			return -1
		}
		return n
	case 'n':
		d := digits(b)
		if d == 0 || len(b) < d+4 || b[d] != '.' || digits(b[d+1:]) != 3 {
			return -1
		}
		return d + 4
	case 'p', 'l', 'x':
		if d := digits(b); d > 0 {
			return d
		}
		return -1
	case 'P':
		return digits(b) // empty unless a parallel worker
	case 'Q':
		if len(b) > 0 && b[0] == '-' {
			if d := digits(b[1:]); d > 0 {
				return d + 1
			}
			return -1
		}
		if d := digits(b); d > 0 {
			return d
		}
		return -1
	case 'e':
		if len(b) < 5 {
			return -1
		}
		for _, c := range b[:5] {
			if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
				return -1
			}
		}
		return 5
	case 'c':
		h := hexDigits(b)
		if h == 0 || len(b) <= h || b[h] != '.' {
			return -1
		}
		h2 := hexDigits(b[h+1:])
		if h2 == 0 {
			return -1
		}
		return h + 1 + h2
	case 'v':
		d := digits(b)
		if d == 0 {
			return 0 // not a backend: prints nothing
		}
		if len(b) <= d || b[d] != '/' {
			return -1
		}
		d2 := digits(b[d+1:])
		if d2 == 0 {
			return -1
		}
		return d + 1 + d2
	}
	return -1
}

func digits(b []byte) int {
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	return n
}

func hexDigits(b []byte) int {
	n := 0
	for n < len(b) && (b[n] >= '0' && b[n] <= '9' || b[n] >= 'a' && b[n] <= 'f') {
		n++
	}
	return n
}

// timestampLen returns the length of a log timestamp at the start of b —
// "2006-01-02 15:04:05 MST" or "2006-01-02 15:04:05.000 MST" — or 0.
func timestampLen(b []byte) int {
	const shape = "0000-00-00 00:00:00"
	if len(b) < len(shape) {
		return 0
	}
	for i := 0; i < len(shape); i++ {
		if shape[i] == '0' {
			if b[i] < '0' || b[i] > '9' {
				return 0
			}
		} else if b[i] != shape[i] {
			return 0
		}
	}
	n := len(shape)
	if n+4 <= len(b) && b[n] == '.' && digits(b[n+1:n+4]) == 3 {
		n += 4
	}
	if n >= len(b) || b[n] != ' ' {
		return 0
	}
	// A zone abbreviation: letters ("UTC", "CEST") or a numeric offset
	// ("+03", "-0530"), as the time zone database spells them.
	z := n + 1
	switch {
	case z < len(b) && (b[z] == '+' || b[z] == '-'):
		d := digits(b[z+1:])
		if d != 2 && d != 4 {
			return 0
		}
		z += 1 + d
	default:
		for z < len(b) && z-n <= 8 && (b[z] >= 'A' && b[z] <= 'Z' || b[z] >= 'a' && b[z] <= 'z') {
			z++
		}
		if z == n+1 {
			return 0
		}
	}
	return z
}

// Severities as printed after the prefix; the auxiliary ones continue the
// message before them.
var (
	primarySeverities = []string{"LOG", "ERROR", "STATEMENT", "DETAIL", "FATAL", "WARNING", "NOTICE", "HINT", "CONTEXT", "INFO", "DEBUG", "PANIC", "QUERY", "LOCATION", "BACKTRACE"}
	auxSeverities     = map[string]bool{"DETAIL": true, "HINT": true, "QUERY": true, "CONTEXT": true, "LOCATION": true, "STATEMENT": true, "BACKTRACE": true}
)

// severityAt recognises "SEVERITY:  " at the start of b and returns the
// severity and the length through the two spaces, or 0.
func severityAt(b []byte) (string, int) {
	if len(b) < 6 || b[0] < 'A' || b[0] > 'Z' {
		return "", 0
	}
	for _, s := range primarySeverities {
		if len(b) >= len(s)+3 && string(b[:len(s)]) == s && b[len(s)] == ':' && b[len(s)+1] == ' ' && b[len(s)+2] == ' ' {
			return s, len(s) + 3
		}
	}
	return "", 0
}

// CommonPrefixes are the log_line_prefix values that DetectPrefix tries,
// most common first: distribution and PostgreSQL defaults, the prefix
// pgBadger recommends, and those of managed services that users cannot
// change.
var CommonPrefixes = []string{
	"%m [%p] ",            // PostgreSQL's default since 10
	"%m [%p] %q%u@%d ",    // Debian and Ubuntu packages
	"%t [%p-%l] %q%u@%d ", // older Debian and Ubuntu packages
	"%m [%p-%l] %q%u@%d ",
	"%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ", // pgBadger's recommendation
	"%m [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
	"%t [%p]: user=%u,db=%d,app=%a,client=%h ",
	"%m [%p]: user=%u,db=%d,app=%a,client=%h ",
	"%t:%r:%u@%d:[%p]:", // Amazon RDS and Aurora
	"%m:%r:%u@%d:[%p]:",
	"%t-%c-",                         // Azure Database for PostgreSQL
	"%m [%p]: [%l-1] db=%d,user=%u ", // Google Cloud SQL
	"[%p]: [%l-1] db=%d,user=%u ",    // Cloud SQL, as exported to Cloud Logging
	"%m [%p] %e %q%u@%d ",
	` sql_error_code = %e time_ms = "%m" pid="%p" proc_start_time="%s" session_id="%c" vtid="%v" tid="%x" log_line="%l" %qdatabase="%d" connection_source="%r" user="%u" application_name="%a" `, // Heroku-style
}

// detectLines is how many record-starting lines DetectPrefix scores.
const detectLines = 2000

// DetectPrefix finds which of CommonPrefixes a stderr log (its first lines,
// head) was written with: the one that matches the most lines, the earliest
// in the list on a tie. It fails when none matches any line.
func DetectPrefix(head []byte) (string, error) {
	prefixes := make([]*Prefix, len(CommonPrefixes))
	for i, s := range CommonPrefixes {
		p, err := CompilePrefix(s)
		if err != nil {
			return "", err
		}
		prefixes[i] = p
	}
	counts := make([]int, len(prefixes))
	lines := 0
	var first []byte
	var m prefixMatch
	for len(head) > 0 && lines < detectLines {
		i := bytes.IndexByte(head, '\n')
		if i < 0 {
			break // a partial last line says nothing reliable
		}
		line := bytes.TrimRight(head[:i], "\r")
		head = head[i+1:]
		if len(line) == 0 || line[0] == '\t' {
			continue
		}
		if first == nil {
			first = line
		}
		lines++
		for j, p := range prefixes {
			if p.match(line, &m) {
				counts[j]++
			}
		}
	}
	best := -1
	for j, n := range counts {
		if n > 0 && (best < 0 || n > counts[best]) {
			best = j
		}
	}
	if best < 0 {
		if first == nil {
			return "", errors.New("detect log_line_prefix: the log has no complete line")
		}
		if len(first) > 100 {
			first = first[:100]
		}
		return "", fmt.Errorf("detect log_line_prefix: none of the %d common prefixes matches the first %d lines (first: %q); pass the server's log_line_prefix (SHOW log_line_prefix) with --log-prefix", len(CommonPrefixes), lines, first)
	}
	return CommonPrefixes[best], nil
}
