package compare

import (
	"strings"
	"unicode"
)

// ScrubLiterals replaces the constants of a SQL text with "?" without
// parsing it: single-quoted strings (also E'…', and one cut off by
// truncation), dollar-quoted strings and numbers that are not part of a
// name. It is for text that may not parse (cut, or not SQL the parser
// knows), where sqlinfo.Normalize cannot be used; double-quoted
// identifiers are kept.
func ScrubLiterals(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i := 0; i < len(rs); {
		c := rs[i]
		switch {
		case c == '\'':
			j := i + 1
			for j < len(rs) {
				if rs[j] == '\\' && j+1 < len(rs) {
					j += 2
					continue
				}
				if rs[j] == '\'' {
					if j+1 < len(rs) && rs[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			b.WriteString("?")
			i = min(j+1, len(rs))
		case c == '"':
			j := i + 1
			for j < len(rs) && rs[j] != '"' {
				j++
			}
			j = min(j+1, len(rs))
			b.WriteString(string(rs[i:j]))
			i = j
		case c == '$' && i+1 < len(rs) && (rs[i+1] == '$' || unicode.IsLetter(rs[i+1]) || rs[i+1] == '_'):
			j := i + 1
			for j < len(rs) && rs[j] != '$' && (unicode.IsLetter(rs[j]) || unicode.IsDigit(rs[j]) || rs[j] == '_') {
				j++
			}
			if j >= len(rs) || rs[j] != '$' { // not a dollar quote
				b.WriteRune(c)
				i++
				continue
			}
			tag := string(rs[i : j+1])
			end := strings.Index(string(rs[j+1:]), tag)
			b.WriteString("?")
			if end < 0 {
				i = len(rs)
			} else {
				i = j + 1 + len([]rune(string(rs[j+1:])[:end])) + len([]rune(tag))
			}
		case unicode.IsDigit(c) && (i == 0 || !isNameRune(rs[i-1])):
			j := i
			for j < len(rs) && (unicode.IsDigit(rs[j]) || rs[j] == '.' || rs[j] == 'e' || rs[j] == 'E' || rs[j] == '_') {
				j++
			}
			b.WriteString("?")
			i = j
		case c == '$' && i+1 < len(rs) && unicode.IsDigit(rs[i+1]): // $1: a parameter, keep
			j := i + 1
			for j < len(rs) && unicode.IsDigit(rs[j]) {
				j++
			}
			b.WriteString(string(rs[i:j]))
			i = j
		default:
			b.WriteRune(c)
			i++
		}
	}
	return b.String()
}

func isNameRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '$'
}
