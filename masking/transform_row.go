package masking

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// rowValues gives a row transform the other columns of the row it declared
// (indexed as in its columns()).
type rowValues interface {
	// original is the column's value as read; false for NULL.
	original(i int) ([]byte, bool)
	// masked is the column's value as written; false for NULL.
	masked(i int) ([]byte, bool)
}

// rowTransform is a transform that reads other columns of the row.
type rowTransform interface {
	Transform
	columns() []string
	appendRow(dst, src []byte, row rowValues) ([]byte, error)
}

// rowColumns returns the columns a transform reads besides its own.
func rowColumns(t Transform) []string {
	if rt, ok := unwrap(t).(rowTransform); ok {
		return rt.columns()
	}
	return nil
}

// appendRow applies t with the row when it needs one.
func appendRow(t Transform, dst, src []byte, row rowValues) ([]byte, error) {
	inner := unwrap(t)
	rt, ok := inner.(rowTransform)
	if !ok || len(rt.columns()) == 0 {
		return t.Append(dst, src)
	}
	n := len(dst)
	out, err := rt.appendRow(dst, src, row)
	if err != nil {
		return out, err
	}
	if l, ok := t.(*lengthLimit); ok {
		if c := utf8.RuneCount(out[n:]); c > l.max {
			return dst, fmt.Errorf("output is %d characters, longer than the %s(%d) of column %s", c, l.target.typ(), l.max, l.target.Column)
		}
	}
	return out, nil
}

// template builds a string from other columns of the row: their masked
// values where they are masked, their values otherwise. NULL is empty.
type template struct {
	parts []tmplPart
	cols  []string
}

type tmplPart struct {
	lit string
	col int // index in cols; -1 for a literal
	fns []string
}

var tmplFuncs = map[string]bool{"lower": true, "upper": true, "slug": true, "first": true, "last": true}

func newTemplate(s string) (*template, error) {
	if s == "" {
		return nil, errors.New("template is required")
	}
	t := &template{}
	for s != "" {
		i := strings.Index(s, "{{")
		if i < 0 {
			t.parts = append(t.parts, tmplPart{lit: s, col: -1})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, tmplPart{lit: s[:i], col: -1})
		}
		s = s[i+2:]
		j := strings.Index(s, "}}")
		if j < 0 {
			return nil, errors.New("template: {{ without }}")
		}
		fields := strings.Split(s[:j], "|")
		s = s[j+2:]
		name := strings.TrimSpace(fields[0])
		if name == "" {
			return nil, errors.New("template: empty {{ }}")
		}
		p := tmplPart{col: -1}
		for k, c := range t.cols {
			if c == name {
				p.col = k
			}
		}
		if p.col < 0 {
			p.col = len(t.cols)
			t.cols = append(t.cols, name)
		}
		for _, f := range fields[1:] {
			f = strings.TrimSpace(f)
			if !tmplFuncs[f] {
				return nil, fmt.Errorf("template: unknown function %q (known: first, last, lower, slug, upper)", f)
			}
			p.fns = append(p.fns, f)
		}
		t.parts = append(t.parts, p)
	}
	if len(t.cols) == 0 {
		return nil, errors.New("template references no column (use constant)")
	}
	return t, nil
}

func (*template) Bijective() bool     { return false }
func (t *template) columns() []string { return t.cols }

func (t *template) Append(dst, _ []byte) ([]byte, error) {
	return dst, errors.New("template needs the row")
}

func (t *template) appendRow(dst, _ []byte, row rowValues) ([]byte, error) {
	for _, p := range t.parts {
		if p.col < 0 {
			dst = append(dst, p.lit...)
			continue
		}
		v, _ := row.masked(p.col)
		if len(p.fns) == 0 {
			dst = append(dst, v...)
			continue
		}
		s := string(v)
		for _, f := range p.fns {
			s = tmplApply(f, s)
		}
		dst = append(dst, s...)
	}
	return dst, nil
}

func tmplApply(fn, s string) string {
	switch fn {
	case "lower":
		return strings.ToLower(s)
	case "upper":
		return strings.ToUpper(s)
	case "first":
		if f := strings.Fields(s); len(f) > 0 {
			return f[0]
		}
		return ""
	case "last":
		if f := strings.Fields(s); len(f) > 0 {
			return f[len(f)-1]
		}
		return ""
	case "slug":
		var b strings.Builder
		dot := false
		for _, r := range strings.ToLower(s) {
			if r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
				if dot && b.Len() > 0 {
					b.WriteByte('.')
				}
				dot = false
				b.WriteRune(r)
			} else {
				dot = true
			}
		}
		return b.String()
	}
	return s
}
