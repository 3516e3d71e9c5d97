package masking

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

var errNotJSON = errors.New("value is not valid JSON")

// jsonTransform masks values inside a json/jsonb document: a transform (or
// null) per path, and optionally the free-text scrub on every other string.
// Object key order and number text are kept as they were.
type jsonTransform struct {
	paths []jsonPathRule
	scrub *scrubber
	// stream is set when the rules allow the one-pass rewrite (see
	// appendStream); appendTree, which parses the whole document into a
	// tree first, handles every rule set and is the reference.
	stream bool
}

type jsonPathRule struct {
	steps []pathStep
	null  bool
	t     Transform
}

func (b *builder) newJSONTransform(o Options) (*jsonTransform, error) {
	jt := &jsonTransform{}
	if len(o.Paths) == 0 && !o.Scrub {
		return nil, errors.New("give paths, scrub or both")
	}
	for _, p := range o.Paths {
		steps, err := parsePath(p.Path)
		if err != nil {
			return nil, err
		}
		r := jsonPathRule{steps: steps, null: p.Null}
		if !p.Null && b.domains != nil {
			if ds, ok := b.domains(p.Spec.DomainName()); ok {
				p.Spec = ds
			}
		}
		if !p.Null {
			if p.Spec.Transform == "jsonb" || p.Spec.Transform == "template" {
				return nil, fmt.Errorf("path %s: transform %q cannot apply inside JSON", p.Path, p.Spec.Transform)
			}
			b.depth++
			t, err := b.build(p.Spec, Target{Type: jsonLeafType(p.Spec), Column: "path " + p.Path})
			b.depth--
			if err != nil {
				return nil, fmt.Errorf("path %s: %w", p.Path, err)
			}
			r.t = t
		}
		jt.paths = append(jt.paths, r)
	}
	if o.Scrub {
		s, err := b.newScrubber(o.ScrubDomains)
		if err != nil {
			return nil, err
		}
		jt.scrub = s
	}
	jt.stream = streamable(jt.paths)
	return jt, nil
}

// jsonLeafType is the type a transform sees inside JSON.
func jsonLeafType(s Spec) string {
	switch s.Transform {
	case "int", "noise":
		if s.intType != "" {
			return s.intType
		}
		if s.Transform == "int" {
			return "int8"
		}
		return "numeric"
	}
	return "text"
}

func (*jsonTransform) Bijective() bool { return false }

func (jt *jsonTransform) Append(dst, src []byte) ([]byte, error) {
	if jt.stream {
		return jt.appendStream(dst, src)
	}
	return jt.appendTree(dst, src)
}

// appendTree parses the document into a tree of nodes, runs the path rules
// one after the other over it, then the scrub, and writes the tree out.
func (jt *jsonTransform) appendTree(dst, src []byte) ([]byte, error) {
	p := jsonParser{s: src}
	p.space()
	v, err := p.value(0)
	if err != nil {
		return dst, err
	}
	p.space()
	if p.i != len(p.s) {
		return dst, errNotJSON
	}
	for _, r := range jt.paths {
		if err := r.apply(v, r.steps); err != nil {
			return dst, err
		}
	}
	if jt.scrub != nil {
		if err := jt.scrubAll(v); err != nil {
			return dst, err
		}
	}
	return v.appendTo(dst), nil
}

func (jt *jsonTransform) scrubAll(v *jnode) error {
	if v.done {
		return nil
	}
	switch v.kind {
	case 's':
		src := []byte(v.str)
		if fs := findPII(src, &jt.scrub.on); len(fs) > 0 {
			v.str = string(jt.scrub.replace(nil, src, fs))
		}
	case 'o', 'a':
		for _, c := range v.vals {
			if err := jt.scrubAll(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// apply runs the rule on the nodes steps select below v.
func (r *jsonPathRule) apply(v *jnode, steps []pathStep) error {
	if len(steps) == 0 {
		return r.leaf(v)
	}
	st := steps[0]
	switch st.kind {
	case stepKey:
		if v.kind == 'o' {
			for i, k := range v.keys {
				if k == st.key {
					if err := r.apply(v.vals[i], steps[1:]); err != nil {
						return err
					}
				}
			}
		}
	case stepIndex:
		if v.kind == 'a' && st.index < len(v.vals) {
			return r.apply(v.vals[st.index], steps[1:])
		}
	case stepAll:
		if v.kind == 'a' || v.kind == 'o' {
			for _, c := range v.vals {
				if err := r.apply(c, steps[1:]); err != nil {
					return err
				}
			}
		}
	case stepDeep:
		// st.key at this level or any level below.
		if v.kind == 'o' {
			for i, k := range v.keys {
				if k == st.key {
					if err := r.apply(v.vals[i], steps[1:]); err != nil {
						return err
					}
				}
			}
		}
		if v.kind == 'o' || v.kind == 'a' {
			for _, c := range v.vals {
				if err := r.apply(c, steps); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// leaf applies the rule to a selected node: strings and numbers are
// transformed (a value the transform rejects becomes asterisks), objects
// and arrays have all their strings and numbers transformed, null and
// booleans stay.
func (r *jsonPathRule) leaf(v *jnode) error {
	if v.done {
		return nil
	}
	if r.null {
		*v = jnode{kind: 'z', done: true}
		return nil
	}
	switch v.kind {
	case 's', 'n':
		out, err := r.t.Append(nil, []byte(v.str))
		if err != nil {
			// JSON is schemaless: a path may select a value its transform
			// cannot take (an "email" that is not an address). Hide it.
			out = out[:0]
			for range utf8.RuneCountInString(v.str) {
				out = append(out, '*')
			}
			v.kind = 's'
		}
		if v.kind == 'n' && !validJSONNumber(out) {
			v.kind = 's'
		}
		v.str = string(out)
		v.done = true
	case 'o', 'a':
		for _, c := range v.vals {
			if err := r.leaf(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// Path steps.
const (
	stepKey   = iota // .name or ['name']
	stepIndex        // [n]
	stepAll          // [*] or .*
	stepDeep         // ..name
)

type pathStep struct {
	kind  int
	key   string
	index int
}

// parsePath parses "$.a.b", "$.items[*].phone", "$.list[0]", "$['odd key']"
// and "$..email".
func parsePath(p string) ([]pathStep, error) {
	bad := func(why string) ([]pathStep, error) { return nil, fmt.Errorf("path %q: %s", p, why) }
	if !strings.HasPrefix(p, "$") {
		return bad("must start with $")
	}
	s := p[1:]
	var steps []pathStep
	ident := func() string {
		i := 0
		for i < len(s) && s[i] != '.' && s[i] != '[' {
			i++
		}
		id := s[:i]
		s = s[i:]
		return id
	}
	for s != "" {
		switch {
		case strings.HasPrefix(s, ".."):
			s = s[2:]
			id := ident()
			if id == "" || id == "*" {
				return bad("expected a key after ..")
			}
			steps = append(steps, pathStep{kind: stepDeep, key: id})
		case s[0] == '.':
			s = s[1:]
			id := ident()
			switch id {
			case "":
				return bad("expected a key after .")
			case "*":
				steps = append(steps, pathStep{kind: stepAll})
			default:
				steps = append(steps, pathStep{kind: stepKey, key: id})
			}
		case s[0] == '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return bad("[ without ]")
			}
			in := s[1:end]
			s = s[end+1:]
			switch {
			case in == "*":
				steps = append(steps, pathStep{kind: stepAll})
			case len(in) >= 2 && (in[0] == '\'' || in[0] == '"') && in[len(in)-1] == in[0]:
				steps = append(steps, pathStep{kind: stepKey, key: in[1 : len(in)-1]})
			default:
				n, err := strconv.Atoi(in)
				if err != nil || n < 0 {
					return bad("expected [*], [n] or ['key']")
				}
				steps = append(steps, pathStep{kind: stepIndex, index: n})
			}
		default:
			return bad("expected . or [")
		}
	}
	if len(steps) == 0 {
		return bad("selects the whole document (use a column transform)")
	}
	return steps, nil
}

// jnode is a parsed JSON value: kind 'o' object, 'a' array, 's' string,
// 'n' number (str is its text), 't' true, 'f' false, 'z' null.
type jnode struct {
	kind byte
	str  string
	keys []string
	vals []*jnode
	done bool // a path rule already handled it
}

type jsonParser struct {
	s []byte
	i int
	// chunks are where nodes come from, a fixed-size chunk at a time (a
	// chunk is never grown, so pointers into it stay valid); used counts
	// the nodes handed out. reset keeps them for the next document.
	chunks [][]jnode
	used   int
}

const jsonChunk = 16

// reset makes p parse s, reusing the nodes of the document it parsed
// before (which must no longer be used) and their keys' and values' room.
func (p *jsonParser) reset(s []byte) {
	p.s, p.i, p.used = s, 0, 0
}

// node returns a new node of kind k.
func (p *jsonParser) node(k byte) *jnode {
	c, j := p.used/jsonChunk, p.used%jsonChunk
	if c == len(p.chunks) {
		p.chunks = append(p.chunks, make([]jnode, jsonChunk))
	}
	p.used++
	n := &p.chunks[c][j]
	*n = jnode{kind: k, keys: n.keys[:0], vals: n.vals[:0]}
	return n
}

func (p *jsonParser) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (*jnode, error) {
	if depth > 1000 || p.i >= len(p.s) {
		return nil, errNotJSON
	}
	switch c := p.s[p.i]; {
	case c == '{':
		p.i++
		n := p.node('o')
		p.space()
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.i++
			return n, nil
		}
		for {
			p.space()
			if p.i >= len(p.s) || p.s[p.i] != '"' {
				return nil, errNotJSON
			}
			k, err := p.str()
			if err != nil {
				return nil, err
			}
			p.space()
			if p.i >= len(p.s) || p.s[p.i] != ':' {
				return nil, errNotJSON
			}
			p.i++
			p.space()
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			n.keys = append(n.keys, k)
			n.vals = append(n.vals, v)
			p.space()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.s) && p.s[p.i] == '}' {
				p.i++
				return n, nil
			}
			return nil, errNotJSON
		}
	case c == '[':
		p.i++
		n := p.node('a')
		p.space()
		if p.i < len(p.s) && p.s[p.i] == ']' {
			p.i++
			return n, nil
		}
		for {
			p.space()
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			n.vals = append(n.vals, v)
			p.space()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.s) && p.s[p.i] == ']' {
				p.i++
				return n, nil
			}
			return nil, errNotJSON
		}
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		n := p.node('s')
		n.str = s
		return n, nil
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range [...]struct {
			text string
			kind byte
		}{{"true", 't'}, {"false", 'f'}, {"null", 'z'}} {
			if strings.HasPrefix(string(p.s[p.i:min(p.i+5, len(p.s))]), lit.text) {
				p.i += len(lit.text)
				return p.node(lit.kind), nil
			}
		}
		return nil, errNotJSON
	default:
		start := p.i
		for p.i < len(p.s) && strings.IndexByte("+-0123456789.eE", p.s[p.i]) >= 0 {
			p.i++
		}
		if !validJSONNumber(p.s[start:p.i]) {
			return nil, errNotJSON
		}
		n := p.node('n')
		n.str = string(p.s[start:p.i])
		return n, nil
	}
}

func (p *jsonParser) str() (string, error) {
	p.i++ // opening quote
	// Most strings have no escapes: one copy, no growing.
	for j := p.i; j < len(p.s); j++ {
		c := p.s[j]
		if c == '"' {
			out := string(p.s[p.i:j])
			p.i = j + 1
			return out, nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
	}
	b, err := p.decodeStr(nil)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// decodeStr appends to b the string that starts at p.i (after its opening
// quote), escapes decoded, and moves past its closing quote.
func (p *jsonParser) decodeStr(b []byte) ([]byte, error) {
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return b, nil
		case c == '\\':
			if p.i+1 >= len(p.s) {
				return nil, errNotJSON
			}
			e := p.s[p.i+1]
			p.i += 2
			switch e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return nil, errNotJSON
				}
				if utf16.IsSurrogate(r) {
					if p.i+1 < len(p.s) && p.s[p.i] == '\\' && p.s[p.i+1] == 'u' {
						p.i += 2
						r2, ok := p.hex4()
						if !ok {
							return nil, errNotJSON
						}
						r = utf16.DecodeRune(r, r2)
					} else {
						r = utf8.RuneError
					}
				}
				b = utf8.AppendRune(b, r)
			default:
				return nil, errNotJSON
			}
		case c < 0x20:
			return nil, errNotJSON
		default:
			b = append(b, c)
			p.i++
		}
	}
	return nil, errNotJSON
}

func (p *jsonParser) hex4() (rune, bool) {
	if p.i+4 > len(p.s) {
		return 0, false
	}
	var r rune
	for _, c := range p.s[p.i : p.i+4] {
		h, ok := unhex(c)
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(h)
	}
	p.i += 4
	return r, true
}

// validJSONNumber reports whether s is a JSON number.
func validJSONNumber(s []byte) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i >= len(s) {
		return false
	}
	if s[i] == '0' {
		i++
	} else if isDigit(s[i]) {
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	} else {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return i == len(s)
}

func (v *jnode) appendTo(dst []byte) []byte {
	switch v.kind {
	case 'o':
		dst = append(dst, '{')
		for i, k := range v.keys {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = appendJSONString(dst, k)
			dst = append(dst, ": "...)
			dst = v.vals[i].appendTo(dst)
		}
		return append(dst, '}')
	case 'a':
		dst = append(dst, '[')
		for i, c := range v.vals {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = c.appendTo(dst)
		}
		return append(dst, ']')
	case 's':
		return appendJSONString(dst, v.str)
	case 'n':
		return append(dst, v.str...)
	case 't':
		return append(dst, "true"...)
	case 'f':
		return append(dst, "false"...)
	}
	return append(dst, "null"...)
}

func appendJSONString[T string | []byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	// The part that needs no escapes, at once.
	i := 0
	for i < len(s) && s[i] >= 0x20 && s[i] != '"' && s[i] != '\\' {
		i++
	}
	dst = append(dst, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
