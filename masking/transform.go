package masking

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// Transform rewrites one value. Implementations are safe for concurrent use.
type Transform interface {
	// Append appends the masked text form of src to dst and returns the
	// extended buffer. src is a non-NULL value in PostgreSQL text form (as
	// COPY text format and bind parameters carry it). Errors never contain
	// src.
	Append(dst, src []byte) ([]byte, error)
	// Bijective reports whether distinct inputs always give distinct
	// outputs, which key and unique columns require.
	Bijective() bool
}

// Spec names a transform, the domain it belongs to and its options, as a
// rules file writes them.
type Spec struct {
	// Transform is the transform's name ("email", "int", "fpe" …; see
	// [Transforms]).
	Transform string
	// Domain names the entity the values belong to. Every column, jsonb
	// path and free-text finding with the same domain gets the same output
	// for the same value. Empty means the transform's name.
	Domain string
	// Options are the transform's parameters.
	Options Options

	// intType, set by a Plan, is the narrowest integer type among the
	// domain's columns, so the int permutation is the same everywhere.
	intType string
}

// DomainName returns the effective domain: Domain, or else the transform
// name for transforms that map values (email, int, full_name …). Transforms
// that rewrite a column as a whole (jsonb, scrub, template, regex, redact,
// constant, date_shift, noise) have no default domain: a [Plan] gives each
// column its own ("public.users.birth_date").
func (s Spec) DomainName() string {
	if s.Domain != "" || columnScoped(s.Transform) {
		return s.Domain
	}
	return s.Transform
}

// columnScoped reports whether a transform's default domain is its column.
func columnScoped(transform string) bool {
	switch transform {
	case "jsonb", "scrub", "template", "regex", "redact", "constant", "date_shift", "noise":
		return true
	}
	return false
}

// Options are the parameters of all transforms; each transform reads only
// the ones [Transforms] lists for it. Field comments give the YAML keys.
type Options struct {
	Min *int64 `yaml:"min" json:"min,omitempty"` // int: smallest value of the range (default: by the column type, sign kept)
	Max *int64 `yaml:"max" json:"max,omitempty"` // int: largest value of the range

	Unique     bool `yaml:"unique" json:"unique,omitempty"`           // email: bijective form even where no unique column requires it
	KeepDomain bool `yaml:"keep_domain" json:"keep_domain,omitempty"` // email: keep the part after @ (default: replace it)

	Alphabet string `yaml:"alphabet" json:"alphabet,omitempty"` // fpe: characters to encrypt (default: digits, and ASCII letters case-folded)

	KeepCountryCode *bool `yaml:"keep_country_code" json:"keep_country_code,omitempty"` // phone: keep "+NN" (default true)

	KeepFirst int    `yaml:"keep_first" json:"keep_first,omitempty"` // redact: characters kept at the start; card: leading digits kept (0..8, default 0)
	KeepLast  int    `yaml:"keep_last" json:"keep_last,omitempty"`   // redact: characters kept at the end
	KeepLast4 bool   `yaml:"keep_last4" json:"keep_last4,omitempty"` // card: keep the last four digits
	MaskChar  string `yaml:"mask_char" json:"mask_char,omitempty"`   // redact: replacement character (default "*")

	KeepPrefix  int `yaml:"keep_prefix" json:"keep_prefix,omitempty"`   // ip: leading bits of an IPv4 address kept
	KeepPrefix6 int `yaml:"keep_prefix6" json:"keep_prefix6,omitempty"` // ip: leading bits of an IPv6 address kept

	WindowDays int    `yaml:"window_days" json:"window_days,omitempty"` // date_shift: offsets are 1..window days either way (default 30)
	By         string `yaml:"by" json:"by,omitempty"`                   // date_shift, noise: key the offset on this column of the row instead of the value

	Percent float64 `yaml:"percent" json:"percent,omitempty"` // noise: at most this many percent up or down (default 10)

	Pattern string `yaml:"pattern" json:"pattern,omitempty"` // regex: RE2 pattern
	Replace string `yaml:"replace" json:"replace,omitempty"` // regex: replacement ($1 expands)

	Value string `yaml:"value" json:"value,omitempty"` // constant: the value

	Template string `yaml:"template" json:"template,omitempty"` // template: "{{full_name | slug}}.{{id}}@example.com"

	Length int `yaml:"length" json:"length,omitempty"` // hash: hex digits, 1..64 (default: the input's length, at most 64)

	Paths []PathRule `yaml:"-" json:"paths,omitempty"`     // jsonb: a transform per path
	Scrub bool       `yaml:"scrub" json:"scrub,omitempty"` // jsonb: free-text scrub every other string

	ScrubDomains ScrubDomains `yaml:"-" json:"scrub_domains,omitzero"` // scrub (and jsonb with scrub): the domains of what is found
}

// PathRule is a jsonb path and what to do with the values it selects.
type PathRule struct {
	// Path is "$.a.b", "$.items[*].phone", "$.list[0]", "$['odd key']" or
	// "$..email" (any depth).
	Path string `json:"path"`
	// Null replaces the selected values with JSON null.
	Null bool `json:"null,omitempty"`
	// Spec is the transform, when not Null.
	Spec Spec `json:"spec"`

	line int
}

// ScrubDomains names the domains whose transforms replace what the free-text
// scrub finds. An empty field means the default domain, named like the kind
// ("email", "phone", "card", "iban", "ip", "name"; the name domain's default
// transform is full_name); "off" disables that detector.
type ScrubDomains struct {
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
	Card  string `json:"card,omitempty"`
	IBAN  string `json:"iban,omitempty"`
	IP    string `json:"ip,omitempty"`
	Name  string `json:"name,omitempty"`
}

// Target describes the column a transform writes to: its outputs must fit.
type Target struct {
	// Column names the column in messages ("public.users.email").
	Column string
	// Type is the PostgreSQL base type (domains resolved): "text",
	// "varchar", "int8", "uuid", "inet", "date", "timestamptz", "numeric",
	// "jsonb" … Empty means text.
	Type string
	// MaxLen is the varchar(n)/char(n) length limit in characters; 0 means
	// none.
	MaxLen int
	// Precision and Scale are numeric(p,s)'s; 0 means unconstrained.
	Precision, Scale int
	// Unique says the column is (part of) a primary key or unique
	// constraint, so only bijective transforms are allowed.
	Unique bool
}

func (t Target) typ() string {
	if t.Type == "" {
		return "text"
	}
	return t.Type
}

// TransformInfo documents one transform.
type TransformInfo struct {
	Name      string   // as written in rules files
	Bijective string   // "yes", "no" or when
	Types     []string // base types it applies to
	Options   []string // option keys it reads
	Doc       string
}

var (
	textTypes    = []string{"text", "varchar", "bpchar", "citext", "name"}
	intTypes     = []string{"int2", "int4", "int8", "numeric"}
	dateTypes    = []string{"date", "timestamp", "timestamptz"}
	numericTypes = []string{"numeric", "int2", "int4", "int8", "float4", "float8", "money"}
)

func withText(ts ...string) []string { return append(slices.Clip(textTypes), ts...) }

// transformTable lists every transform. Immutable.
var transformTable = []TransformInfo{
	{"int", "yes", intTypes, []string{"min", "max"}, "keyed permutation of an integer range (Feistel network, cycle-walking); the range is [min,max] or, by default, the positive (or negative) half of the column type, so the sign is kept"},
	{"uuid", "yes", withText("uuid"), nil, "keyed permutation of the 122 bits of a UUID that are not version or variant"},
	{"fpe", "yes", textTypes, []string{"alphabet"}, "FF1 format-preserving encryption: digits stay digits, letters stay letters (case kept, case-insensitive), everything else stays in place"},
	{"national_id", "yes", textTypes, []string{"alphabet"}, "fpe for identifiers such as SSNs and tax numbers: separators kept"},
	{"postcode", "yes", textTypes, nil, "fpe for postal codes: format kept"},
	{"phone", "yes", textTypes, []string{"keep_country_code"}, "digits encrypted with FF1, everything else kept; a leading +country code is kept by default"},
	{"email", "when unique (automatic on key and unique columns)", textTypes, []string{"unique", "keep_domain"}, "unique: FF1 of the local part and the domain (under .example); otherwise first.last<nn>@example.com|net|org picked by keyed hash"},
	{"first_name", "no", textTypes, nil, "a first name from the embedded dictionary, picked by keyed hash"},
	{"last_name", "no", textTypes, nil, "a last name from the embedded dictionary"},
	{"full_name", "no", textTypes, nil, "first and last name from the embedded dictionaries"},
	{"street_address", "no", textTypes, nil, "house number, street name and suffix"},
	{"city", "no", textTypes, nil, "a city from the embedded dictionary"},
	{"card", "no", textTypes, []string{"keep_first", "keep_last4"}, "Luhn-valid card number of the same length and grouping (digits by FF1, check digit recomputed)"},
	{"iban", "no", textTypes, nil, "valid IBAN: country kept, BBAN by FF1 (format kept), mod-97 check digits recomputed"},
	{"ip", "yes", withText("inet", "cidr"), []string{"keep_prefix", "keep_prefix6"}, "keyed permutation of the host bits of an IPv4/IPv6 address, the first keep_prefix bits kept"},
	{"date_shift", "no", withText(dateTypes...), []string{"window_days", "by"}, "date or timestamp shifted by a keyed offset of 1..window_days days either way; time of day and zone kept"},
	{"noise", "no", withText(numericTypes...), []string{"percent", "by"}, "number moved by at most ±percent, scale kept"},
	{"redact", "no", textTypes, []string{"keep_first", "keep_last", "mask_char"}, "every character but the first/last N replaced by mask_char"},
	{"regex", "no", textTypes, []string{"pattern", "replace"}, "regular-expression replace (RE2)"},
	{"constant", "no", nil, []string{"value"}, "the same value for every row"},
	{"hash", "no", textTypes, []string{"length"}, "hex digits of the keyed hash"},
	{"template", "no", textTypes, []string{"template"}, "a string built from other columns of the row (their masked values): {{column}}, {{column | lower|upper|slug|first|last}}"},
	{"jsonb", "no", []string{"jsonb", "json", "text"}, []string{"paths", "scrub", "scrub_domains"}, "a transform per JSON path; with scrub, free-text scrub of every other string"},
	{"scrub", "no", textTypes, []string{"scrub_domains"}, "free text: e-mails, phones, card numbers, IBANs, IPs and (by dictionary) person names found inside are replaced by their domains' transforms"},
}

// Transforms lists the available transforms, sorted by name.
func Transforms() []TransformInfo {
	out := slices.Clone(transformTable)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func transformInfo(name string) (TransformInfo, bool) {
	for _, ti := range transformTable {
		if ti.Name == name {
			return ti, true
		}
	}
	return TransformInfo{}, false
}

// NewTransform builds the transform spec describes, for a column like
// target, keyed by kr. Domains referenced by a scrub or jsonb transform get
// their kind's default transform; a [Plan] resolves them from the rules
// instead.
func NewTransform(kr *Keyring, spec Spec, target Target) (Transform, error) {
	b := &builder{kr: kr}
	return b.build(spec, target)
}

// builder builds transforms; domains resolves a domain name to its spec.
type builder struct {
	kr      *Keyring
	domains func(name string) (Spec, bool)
	depth   int
}

// errCollides is wrapped when a non-bijective transform meets a unique
// column.
var errCollides = errors.New("transform can collide")

func (b *builder) build(spec Spec, t Target) (Transform, error) {
	if b.kr == nil {
		return nil, errNoKey
	}
	info, ok := transformInfo(spec.Transform)
	if !ok {
		return nil, fmt.Errorf("unknown transform %q (known: %s)", spec.Transform, knownTransforms())
	}
	if info.Types != nil && !slices.Contains(info.Types, t.typ()) {
		return nil, fmt.Errorf("transform %q does not apply to type %s", spec.Transform, t.typ())
	}
	dn := spec.DomainName()
	if dn == "" {
		dn = "column:" + t.Column
	}
	dk := b.kr.domain(dn)
	o := spec.Options
	var tr Transform
	var err error
	switch spec.Transform {
	case "int":
		if spec.intType != "" {
			t.Type = spec.intType
		}
		tr, err = newIntTransform(dk, o, t)
	case "uuid":
		tr = newUUIDTransform(dk)
	case "fpe", "national_id", "postcode":
		tr, err = newFPETransform(dk, o.Alphabet)
	case "phone":
		tr, err = newPhoneTransform(dk, o)
	case "email":
		tr, err = newEmailTransform(dk, o, o.Unique || t.Unique)
	case "first_name", "last_name", "full_name", "street_address", "city":
		tr = &dictTransform{dk: dk, kind: spec.Transform}
	case "card":
		tr, err = newCardTransform(dk, o)
	case "iban":
		tr, err = newIBANTransform(dk)
	case "ip":
		tr, err = newIPTransform(dk, o, t)
	case "date_shift":
		tr, err = newDateShift(dk, o)
	case "noise":
		tr, err = newNoise(dk, o, t)
	case "redact":
		tr, err = newRedact(o)
	case "regex":
		tr, err = newRegexTransform(o)
	case "constant":
		tr = constantTransform(o.Value)
	case "hash":
		tr, err = newHashTransform(dk, o)
	case "template":
		tr, err = newTemplate(o.Template)
	case "jsonb":
		tr, err = b.newJSONTransform(o)
	case "scrub":
		tr, err = b.newScrubber(o.ScrubDomains)
	}
	if err != nil {
		return nil, fmt.Errorf("transform %q: %w", spec.Transform, err)
	}
	if t.Unique && !tr.Bijective() {
		return nil, fmt.Errorf("transform %q on a key or unique column: %w (use int, uuid, fpe, phone, ip or email)", spec.Transform, errCollides)
	}
	if t.MaxLen > 0 {
		tr = &lengthLimit{Transform: tr, max: t.MaxLen, target: t}
	}
	return tr, nil
}

func knownTransforms() string {
	names := make([]string, 0, len(transformTable))
	for _, ti := range transformTable {
		names = append(names, ti.Name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// lengthLimit fails outputs longer than a varchar(n)/char(n) column takes.
type lengthLimit struct {
	Transform
	max    int
	target Target
}

func (l *lengthLimit) Append(dst, src []byte) ([]byte, error) {
	n := len(dst)
	out, err := l.Transform.Append(dst, src)
	if err != nil {
		return out, err
	}
	if c := utf8.RuneCount(out[n:]); c > l.max {
		return dst, fmt.Errorf("output is %d characters, longer than the %s(%d) of column %s", c, l.target.typ(), l.max, l.target.Column)
	}
	return out, nil
}

// unwrap returns the transform inside a lengthLimit.
func unwrap(t Transform) Transform {
	if l, ok := t.(*lengthLimit); ok {
		return l.Transform
	}
	return t
}

// constantTransform returns the same value for every input.
type constantTransform string

func (c constantTransform) Append(dst, _ []byte) ([]byte, error) { return append(dst, c...), nil }
func (constantTransform) Bijective() bool                        { return false }
