package masking

import (
	"bytes"
	"math/bits"
	"sync"
	"unicode/utf8"
)

// The one-pass rewrite of a JSON document (appendStream) gives the same
// bytes as appendTree, without building a tree: it parses and writes as it
// goes, and matches every path rule at once, as an automaton over the path
// from the root to each value.
//
// Why the result is the same: appendTree runs the rules in order and never
// changes a value twice, so without null rules a string or number is
// transformed by the first rule (in file order) that selects it or an
// object or array around it, and the scrub takes the strings no rule
// selects. Which nodes a rule selects depends only on the keys and indexes
// on the way from the root. A null rule replaces a whole subtree, even one
// an earlier rule has partly transformed: rule sets with one go through
// appendTree.

// maxStreamRules bounds the path rules the rewrite tracks (one word each).
const maxStreamRules = 16

// streamable reports whether appendStream handles these rules.
func streamable(paths []jsonPathRule) bool {
	if len(paths) > maxStreamRules {
		return false
	}
	for _, r := range paths {
		if r.null || len(r.steps) >= 64 {
			return false
		}
	}
	return true
}

// pathState holds, per rule, the automaton's states at one value: bit i
// set means steps[i:] remain to be matched below it.
type pathState [maxStreamRules]uint64

// jsonStream is the state of one appendStream call. They are pooled with
// their buffers.
type jsonStream struct {
	jt  *jsonTransform
	p   jsonParser
	dst []byte
	tmp []byte // a transform's or the scrub's output
	str []byte // a decoded string that had escapes
	// Per rule, the last value it transformed and the text written for it:
	// a document often holds a value twice (the actor's and the request's
	// IP), and transforms are deterministic. memoSet says which are set.
	memo    [maxStreamRules]leafMemo
	memoSet uint32
	row     *rowMemo // the row's column values (nil: none)
}

type leafMemo struct {
	number  bool
	in, out []byte
}

// Bounds on what a pooled jsonStream keeps.
const (
	memoMaxIn     = 64
	memoMaxOut    = 128
	streamMaxKeep = 64 << 10
)

var jsonStreams = sync.Pool{New: func() any { return new(jsonStream) }}

// appendStream is appendTree in one pass (see above).
func (jt *jsonTransform) appendStream(dst, src []byte) ([]byte, error) {
	return jt.appendStreamRow(dst, src, nil)
}

// appendStreamRow is appendStream that takes the outputs of the row's
// other columns from row where a path's transform is theirs.
func (jt *jsonTransform) appendStreamRow(dst, src []byte, row *rowMemo) ([]byte, error) {
	n := len(dst)
	s := jsonStreams.Get().(*jsonStream)
	s.jt, s.p, s.dst, s.memoSet, s.row = jt, jsonParser{s: src}, dst, 0, row
	defer func() {
		s.jt, s.p, s.dst, s.row = nil, jsonParser{}, nil, nil
		if cap(s.tmp) > streamMaxKeep || cap(s.str) > streamMaxKeep {
			s.tmp, s.str = nil, nil
		}
		jsonStreams.Put(s)
	}()
	var st pathState
	for r := range jt.paths {
		st[r] = 1
	}
	s.p.space()
	if err := s.value(0, st, -1); err != nil {
		return dst[:n], err
	}
	s.p.space()
	if s.p.i != len(src) {
		return dst[:n], errNotJSON
	}
	return s.dst, nil
}

// value rewrites the value at s.p.i. st is its automaton state; sel is the
// first rule that selects it or a value around it (-1: none).
func (s *jsonStream) value(depth int, st pathState, sel int) error {
	p := &s.p
	if depth > 1000 || p.i >= len(p.s) {
		return errNotJSON
	}
	switch c := p.s[p.i]; {
	case c == '{':
		p.i++
		s.dst = append(s.dst, '{')
		p.space()
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.i++
			s.dst = append(s.dst, '}')
			return nil
		}
		for first := true; ; first = false {
			p.space()
			if p.i >= len(p.s) || p.s[p.i] != '"' {
				return errNotJSON
			}
			key, raw, err := s.string()
			if err != nil {
				return err
			}
			if !first {
				s.dst = append(s.dst, ", "...)
			}
			s.dst = appendJSONText(s.dst, key, raw)
			s.dst = append(s.dst, ": "...)
			var cst pathState
			csel := s.child(&st, &cst, sel, key, true, 0)
			p.space()
			if p.i >= len(p.s) || p.s[p.i] != ':' {
				return errNotJSON
			}
			p.i++
			p.space()
			if err := s.value(depth+1, cst, csel); err != nil {
				return err
			}
			p.space()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.s) && p.s[p.i] == '}' {
				p.i++
				s.dst = append(s.dst, '}')
				return nil
			}
			return errNotJSON
		}
	case c == '[':
		p.i++
		s.dst = append(s.dst, '[')
		p.space()
		if p.i < len(p.s) && p.s[p.i] == ']' {
			p.i++
			s.dst = append(s.dst, ']')
			return nil
		}
		for idx := 0; ; idx++ {
			p.space()
			if idx > 0 {
				s.dst = append(s.dst, ", "...)
			}
			var cst pathState
			csel := s.child(&st, &cst, sel, nil, false, idx)
			if err := s.value(depth+1, cst, csel); err != nil {
				return err
			}
			p.space()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.s) && p.s[p.i] == ']' {
				p.i++
				s.dst = append(s.dst, ']')
				return nil
			}
			return errNotJSON
		}
	case c == '"':
		v, raw, err := s.string()
		if err != nil {
			return err
		}
		switch {
		case sel >= 0:
			s.leaf(sel, v, false)
		case s.jt.scrub != nil:
			out, changed := s.jt.scrub.scrub(s.tmp[:0], v)
			if changed {
				s.dst = appendJSONString(s.dst, out)
			} else {
				s.dst = appendJSONText(s.dst, v, raw)
			}
			s.tmp = out[:0]
		default:
			s.dst = appendJSONText(s.dst, v, raw)
		}
		return nil
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range [...]string{"true", "false", "null"} {
			if bytes.HasPrefix(p.s[p.i:], []byte(lit)) {
				p.i += len(lit)
				s.dst = append(s.dst, lit...)
				return nil
			}
		}
		return errNotJSON
	default:
		start := p.i
		for p.i < len(p.s) && isJSONNumberByte(p.s[p.i]) {
			p.i++
		}
		num := p.s[start:p.i]
		if !validJSONNumber(num) {
			return errNotJSON
		}
		if sel >= 0 {
			s.leaf(sel, num, true)
		} else {
			s.dst = append(s.dst, num...)
		}
		return nil
	}
}

func isJSONNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E'
}

// child computes the state of a member (key, isKey) or an element (idx,
// !isKey) of a value in state st, selected by sel, into cst, and returns
// the first rule that selects the child or a value around it.
func (s *jsonStream) child(st, cst *pathState, sel int, key []byte, isKey bool, idx int) int {
	n := len(s.jt.paths)
	if sel >= 0 {
		n = sel // later rules lose to sel anyway
	}
	for r := 0; r < n; r++ {
		m := st[r]
		if m == 0 {
			continue
		}
		steps := s.jt.paths[r].steps
		var out uint64
		for m != 0 {
			i := bits.TrailingZeros64(m)
			m &= m - 1
			if i >= len(steps) {
				continue
			}
			switch step := &steps[i]; step.kind {
			case stepKey:
				if isKey && string(key) == step.key {
					out |= 1 << (i + 1)
				}
			case stepIndex:
				if !isKey && idx == step.index {
					out |= 1 << (i + 1)
				}
			case stepAll:
				out |= 1 << (i + 1)
			case stepDeep:
				out |= 1 << i
				if isKey && string(key) == step.key {
					out |= 1 << (i + 1)
				}
			}
		}
		if out&(1<<len(steps)) != 0 {
			return r // selected: the rules after r do not matter below
		}
		cst[r] = out
	}
	return sel
}

// leaf writes a string or number v transformed by rule r, as
// jsonPathRule.leaf does.
func (s *jsonStream) leaf(r int, v []byte, number bool) {
	m := &s.memo[r]
	if s.memoSet&(1<<r) != 0 && m.number == number && bytes.Equal(v, m.in) {
		s.dst = append(s.dst, m.out...)
		return
	}
	start := len(s.dst)
	var out []byte
	var err error
	if o, ok := s.row.lookup(s.jt.paths[r].t, v); ok {
		out = append(s.tmp[:0], o...)
	} else {
		out, err = s.jt.paths[r].t.Append(s.tmp[:0], v)
	}
	str := !number
	if err != nil {
		// A value the transform cannot take: hidden (see jsonPathRule.leaf).
		out = out[:0]
		for range utf8.RuneCount(v) {
			out = append(out, '*')
		}
		str = true
	}
	if str || !validJSONNumber(out) {
		s.dst = appendJSONString(s.dst, out)
	} else {
		s.dst = append(s.dst, out...)
	}
	s.tmp = out[:0]
	if w := s.dst[start:]; len(v) <= memoMaxIn && len(w) <= memoMaxOut {
		m.number, m.in, m.out = number, append(m.in[:0], v...), append(m.out[:0], w...)
		s.memoSet |= 1 << r
	}
}

// string reads the string at s.p.i. raw says it had no escapes: then v is
// the source's bytes, which appendJSONString would write back unchanged.
// Otherwise v is valid until the next call.
func (s *jsonStream) string() (v []byte, raw bool, err error) {
	p := &s.p
	p.i++ // opening quote
	for j := p.i; j < len(p.s); j++ {
		c := p.s[j]
		if c == '"' {
			v = p.s[p.i:j]
			p.i = j + 1
			return v, true, nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
	}
	s.str, err = p.decodeStr(s.str[:0])
	return s.str, false, err
}

// appendJSONText appends v as a JSON string; raw: v needs no escapes.
func appendJSONText(dst, v []byte, raw bool) []byte {
	if !raw {
		return appendJSONString(dst, v)
	}
	dst = append(dst, '"')
	dst = append(dst, v...)
	return append(dst, '"')
}
