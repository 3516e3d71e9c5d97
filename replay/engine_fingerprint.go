package replay

import (
	"strings"
	"sync"
)

// fingerprintCache remembers fingerprints by statement shape: the SQL text
// with the contents of numeric and string literals blanked out. A
// fingerprint ignores constants, so statements of one shape have one
// fingerprint, and a workload of a few hundred shapes (the usual: the same
// queries with different values) calls the parser a few hundred times, not
// once per statement (pg_query through cgo costs several microseconds).
//
// Text the shape scanner is not sure about — backslashes (escape strings),
// dollar quoting — bypasses the cache.
type fingerprintCache struct {
	fp  func(string) string
	max int

	mu     sync.Mutex
	shapes map[string]string
}

func newFingerprintCache(fp func(string) string, max int) *fingerprintCache {
	return &fingerprintCache{fp: fp, max: max, shapes: make(map[string]string)}
}

// get returns the fingerprint of sql.
func (c *fingerprintCache) get(sql string) string {
	shape, ok := statementShape(sql)
	if !ok {
		return c.fp(sql)
	}
	c.mu.Lock()
	fp, hit := c.shapes[shape]
	c.mu.Unlock()
	if hit {
		return fp
	}
	fp = c.fp(sql)
	c.mu.Lock()
	if len(c.shapes) >= c.max {
		clear(c.shapes)
	}
	c.shapes[shape] = fp
	c.mu.Unlock()
	return fp
}

// statementShape returns sql with every digit run that is not part of an
// identifier or a parameter ($1) replaced by "0" and the contents of every
// single-quoted string replaced by nothing, keeping identifiers (quoted or
// not), keywords, operators and comments as they are. ok is false when sql
// holds a backslash or a dollar quote, whose lexing this does not attempt.
func statementShape(sql string) (string, bool) {
	var b strings.Builder
	b.Grow(len(sql))
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '\\':
			return "", false
		case c == '$':
			j := i + 1
			for j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
				j++
			}
			if j == i+1 {
				return "", false // $$ or $tag$: dollar quoting
			}
			b.WriteString(sql[i:j]) // a parameter keeps its number
			i = j
		case c == '\'':
			end := pureSkipQuoted(sql, i, '\'', false)
			if end < 0 {
				return "", false
			}
			b.WriteString("''")
			i = end
		case c == '"':
			end := pureSkipQuoted(sql, i, '"', false)
			if end < 0 {
				return "", false
			}
			b.WriteString(sql[i:end])
			i = end
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-', c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			end := pureSkipSpace(sql, i)
			b.WriteString(sql[i:end])
			i = end
		case pureWordStart(c):
			_, end := pureReadWord(sql, i)
			b.WriteString(sql[i:end])
			i = end
		case c >= '0' && c <= '9':
			j := i
			for j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
				j++
			}
			b.WriteByte('0')
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), true
}
