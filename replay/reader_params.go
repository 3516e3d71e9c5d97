package replay

import (
	"fmt"
	"strconv"
	"strings"
)

// parseParams parses the parameter list PostgreSQL logs for an
// extended-protocol statement, after "parameters: ":
//
//	$1 = '2', $2 = 'it''s', $3 = NULL
//
// Values are SQL string literals (quotes doubled) and may span lines; NULL
// is a nil Value. Parameters must come numbered $1, $2, … in order.
func parseParams(s string) ([]Param, error) {
	var params []Param
	for i := 0; ; {
		n := len(params) + 1
		want := "$" + strconv.Itoa(n) + " = "
		if !strings.HasPrefix(s[i:], want) {
			return nil, fmt.Errorf("parse parameters: want %q at offset %d", want, i)
		}
		i += len(want)
		switch {
		case strings.HasPrefix(s[i:], "NULL"):
			params = append(params, Param{})
			i += 4
		case i < len(s) && s[i] == '\'':
			v, end, ok := unquoteSQL(s, i)
			if !ok {
				return nil, fmt.Errorf("parse parameters: unterminated value of $%d", n)
			}
			params = append(params, Param{Value: &v})
			i = end
		default:
			return nil, fmt.Errorf("parse parameters: value of $%d is neither NULL nor quoted", n)
		}
		if i == len(s) {
			return params, nil
		}
		if !strings.HasPrefix(s[i:], ", ") {
			return nil, fmt.Errorf("parse parameters: want \", \" after $%d", n)
		}
		i += 2
	}
}

// unquoteSQL reads the SQL string literal that starts at s[i] (a quote) and
// returns its value and the offset after its closing quote.
func unquoteSQL(s string, i int) (string, int, bool) {
	i++ // opening quote
	start := i
	var b *strings.Builder
	for {
		j := strings.IndexByte(s[i:], '\'')
		if j < 0 {
			return "", 0, false
		}
		j += i
		if j+1 < len(s) && s[j+1] == '\'' {
			if b == nil {
				b = &strings.Builder{}
			}
			b.WriteString(s[start : j+1])
			i = j + 2
			start = i
			continue
		}
		if b == nil {
			return s[start:j], j + 1, true
		}
		b.WriteString(s[start:j])
		return b.String(), j + 1, true
	}
}
