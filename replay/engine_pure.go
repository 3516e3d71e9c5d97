package replay

import "strings"

// engineIsPureRead reports whether sql is certainly a read that neither
// changes data, takes row locks, nor depends on when it runs relative to
// other reads — so ordered mode may run it side by side with other pure
// reads without changing anything any statement sees.
//
// It is deliberately conservative: a single SELECT with no locking clause (FOR UPDATE / SHARE …), no INTO, no
// dollar quoting, and no function call other than a list of well-known
// side-effect-free built-ins; anything it is not sure about is "not pure",
// which only costs overlap, never correctness. A function call it does not
// know (nextval(), a user function that might write) makes a statement
// impure.
func engineIsPureRead(sql string) bool {
	s := sql
	i := pureSkipSpace(s, 0)
	kw, j := pureReadWord(s, i)
	switch strings.ToLower(kw) {
	case "begin", "start":
		// Not pure: BEGIN fixes the transaction's timestamp, which now()
		// and every DEFAULT now() column written later in the transaction
		// read. Two sessions' BEGINs overlapping would order those
		// timestamps by chance, and "ORDER BY created_at" over rows two
		// sessions inserted would differ from replay to replay.
		return false
	case "select":
	default:
		return false
	}

	prev := "select"  // previous word, lowercased
	prevCast := false // the previous token was "::"
	for i = j; i < len(s); {
		c := s[i]
		switch {
		case c == '-' && i+1 < len(s) && s[i+1] == '-', c == '/' && i+1 < len(s) && s[i+1] == '*':
			i = pureSkipSpace(s, i)
		case c == '\'':
			// E'…' strings may escape quotes with a backslash
			escapes := i > 0 && (s[i-1] == 'e' || s[i-1] == 'E')
			end := pureSkipQuoted(s, i, '\'', escapes)
			if end < 0 {
				return false
			}
			i, prev, prevCast = end, "", false
		case c == '"':
			end := pureSkipQuoted(s, i, '"', false)
			if end < 0 {
				return false
			}
			k := pureSkipSpace(s, end)
			if k < len(s) && s[k] == '(' {
				return false // a quoted function name: unknown
			}
			i, prev, prevCast = end, "", false
		case c == '$':
			if i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
				i++ // a parameter $n
				continue
			}
			return false // dollar quoting: too clever for this scanner
		case c == ';':
			return pureOnlyTrailing(s, i)
		case c == ':' && i+1 < len(s) && s[i+1] == ':':
			i += 2
			prevCast = true
			continue
		case pureWordStart(c):
			w, end := pureReadWord(s, i)
			lw := strings.ToLower(w)
			switch lw {
			case "into":
				return false
			case "update", "share", "key", "no":
				if prev == "for" {
					return false
				}
			}
			k := pureSkipSpace(s, end)
			if k < len(s) && s[k] == '(' && !prevCast && !pureCallable(lw) {
				return false
			}
			i, prev, prevCast = end, lw, false
			continue
		default:
			i++
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			prevCast = false
		}
	}
	return true
}

// pureCallable reports whether w is one of the words that may stand before "(" in a pure read:
// keywords that take a parenthesised list or subquery, type names with
// modifiers, and built-in functions without side effects whose result
// does not depend on the time or on a sequence.
func pureCallable(w string) bool {
	switch w {
	case "select", "from", "join", "where", "and", "or", "not", "on", "as", "in", "exists", "any",
		"all", "some", "using", "over", "filter", "values", "by", "then", "else", "when", "case",
		"between", "like", "ilike", "is", "lateral", "union", "intersect", "except", "distinct",
		"having", "limit", "offset", "array", "row", "cast", "within", "group", "partition", "numeric",
		"decimal", "varchar", "char", "character", "timestamp", "timestamptz", "time", "interval", "bit",
		"varbit", "float", "coalesce", "nullif", "greatest", "least", "count", "sum", "avg", "min",
		"max", "lower", "upper", "length", "char_length", "abs", "round", "trunc", "floor", "ceil",
		"ceiling", "mod", "sign", "sqrt", "power", "exp", "ln", "log", "substr", "substring", "trim",
		"btrim", "ltrim", "rtrim", "concat", "concat_ws", "replace", "position", "strpos", "left",
		"right", "split_part", "lpad", "rpad", "repeat", "reverse", "format", "encode", "decode",
		"extract", "date_part", "date_trunc", "to_char", "string_agg", "array_agg", "json_agg",
		"jsonb_agg", "json_build_object", "jsonb_build_object", "json_object_agg", "jsonb_object_agg",
		"row_to_json", "to_json", "to_jsonb", "bool_and", "bool_or", "every", "unnest",
		"generate_series", "array_length", "cardinality", "json_array_elements", "jsonb_array_elements",
		"jsonb_array_length", "regexp_replace", "md5", "row_number", "rank", "dense_rank", "lag", "lead",
		"first_value", "last_value", "percentile_cont", "percentile_disc":
		return true
	}
	return false
}

func pureWordStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func pureWordByte(c byte) bool { return pureWordStart(c) || (c >= '0' && c <= '9') || c == '$' }

// pureReadWord returns the identifier or keyword starting at i (empty if none)
// and the index after it.
func pureReadWord(s string, i int) (string, int) {
	j := i
	if j < len(s) && pureWordStart(s[j]) {
		for j < len(s) && pureWordByte(s[j]) {
			j++
		}
	}
	return s[i:j], j
}

// pureSkipSpace skips white space and comments from i.
func pureSkipSpace(s string, i int) int {
	for i < len(s) {
		switch {
		case s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f':
			i++
		case s[i] == '-' && i+1 < len(s) && s[i+1] == '-':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case s[i] == '/' && i+1 < len(s) && s[i+1] == '*':
			depth := 0
			for i < len(s) {
				if s[i] == '/' && i+1 < len(s) && s[i+1] == '*' {
					depth++
					i += 2
				} else if s[i] == '*' && i+1 < len(s) && s[i+1] == '/' {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
		default:
			return i
		}
	}
	return i
}

// pureSkipQuoted returns the index after the quoted token starting at i, or -1
// if it does not end.
func pureSkipQuoted(s string, i int, q byte, backslash bool) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if backslash {
				j++
			}
		case q:
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return -1
}

// pureOnlyTrailing reports whether nothing but semicolons, space and
// comments follows i.
func pureOnlyTrailing(s string, i int) bool {
	for {
		i = pureSkipSpace(s, i)
		if i >= len(s) {
			return true
		}
		if s[i] != ';' {
			return false
		}
		i++
	}
}
