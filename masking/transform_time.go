package masking

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"
)

var (
	errNotDate   = errors.New("value is not an ISO date or timestamp (set DateStyle to ISO on the source session)")
	errNotNumber = errors.New("value is not a number")
)

// dateShift moves dates and timestamps by a keyed offset of 1..window days,
// earlier or later, chosen by the keyed hash of the value — or, with by, of
// another column of the row (so every timestamp of one user moves alike).
// The time of day and the zone are kept; infinity stays infinity.
type dateShift struct {
	dk     *domainKey
	window int
	by     string
}

func newDateShift(dk *domainKey, o Options) (*dateShift, error) {
	w := o.WindowDays
	if w == 0 {
		w = 30
	}
	if w < 1 || w > 36500 {
		return nil, errors.New("window_days must be 1..36500")
	}
	return &dateShift{dk: dk, window: w, by: o.By}, nil
}

func (*dateShift) Bijective() bool { return false }

func (d *dateShift) Append(dst, src []byte) ([]byte, error) {
	if d.by != "" {
		return dst, fmt.Errorf("date_shift with by: %q needs the row", d.by)
	}
	return d.shift(dst, src, src)
}

func (d *dateShift) columns() []string {
	if d.by == "" {
		return nil
	}
	return []string{d.by}
}

func (d *dateShift) appendRow(dst, src []byte, row rowValues) ([]byte, error) {
	if d.by == "" {
		return d.shift(dst, src, src)
	}
	key, ok := row.original(0)
	if !ok {
		key = nil // NULL key: one offset for all of them
	}
	return d.shift(dst, src, key)
}

func (d *dateShift) offset(key []byte) int {
	var h [32]byte
	d.dk.sum(&h, 't', key)
	n := 1 + int(binary.BigEndian.Uint64(h[:8])%uint64(d.window))
	if h[8]&1 == 1 {
		n = -n
	}
	return n
}

func (d *dateShift) shift(dst, src, key []byte) ([]byte, error) {
	if bytes.Equal(src, []byte("infinity")) || bytes.Equal(src, []byte("-infinity")) {
		return append(dst, src...), nil
	}
	if bytes.HasSuffix(src, []byte(" BC")) {
		return dst, errors.New("dates before the common era are not supported")
	}
	// YYYY[Y…]-MM-DD
	i := 0
	for i < len(src) && isDigit(src[i]) {
		i++
	}
	if i < 4 || i > 7 || len(src) < i+6 || src[i] != '-' || src[i+3] != '-' ||
		!isDigit(src[i+1]) || !isDigit(src[i+2]) || !isDigit(src[i+4]) || !isDigit(src[i+5]) {
		return dst, errNotDate
	}
	year, _ := strconv.Atoi(string(src[:i]))
	month := int(src[i+1]-'0')*10 + int(src[i+2]-'0')
	day := int(src[i+4]-'0')*10 + int(src[i+5]-'0')
	if month < 1 || month > 12 || day < 1 || day > 31 {
		return dst, errNotDate
	}
	t := time.Date(year, time.Month(month), day, 12, 0, 0, 0, time.UTC).AddDate(0, 0, d.offset(key))
	if t.Year() < 1 {
		return dst, errors.New("shifted date falls before year 1")
	}
	y := t.Year()
	if y < 10000 {
		dst = append(dst, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10))
	} else {
		dst = strconv.AppendInt(dst, int64(y), 10)
	}
	m, dd := int(t.Month()), t.Day()
	dst = append(dst, '-', byte('0'+m/10), byte('0'+m%10), '-', byte('0'+dd/10), byte('0'+dd%10))
	return append(dst, src[i+6:]...), nil
}

// noise moves a number by a keyed fraction of at most ±percent, keeping its
// scale (the digits after the point) and sign.
type noise struct {
	dk      *domainKey
	percent float64
	by      string
	target  Target
}

func newNoise(dk *domainKey, o Options, t Target) (*noise, error) {
	p := o.Percent
	if p == 0 {
		p = 10
	}
	if p <= 0 || p >= 100 || math.IsNaN(p) {
		return nil, errors.New("percent must be above 0 and below 100")
	}
	return &noise{dk: dk, percent: p, by: o.By, target: t}, nil
}

func (*noise) Bijective() bool { return false }

func (n *noise) Append(dst, src []byte) ([]byte, error) {
	if n.by != "" {
		return dst, fmt.Errorf("noise with by: %q needs the row", n.by)
	}
	return n.apply(dst, src, src)
}

func (n *noise) columns() []string {
	if n.by == "" {
		return nil
	}
	return []string{n.by}
}

func (n *noise) appendRow(dst, src []byte, row rowValues) ([]byte, error) {
	if n.by == "" {
		return n.apply(dst, src, src)
	}
	key, _ := row.original(0)
	return n.apply(dst, src, key)
}

// factor returns the keyed fraction in [-percent, +percent] / 100 as an
// integer number of billionths.
func (n *noise) factor(key []byte) int64 {
	var h [32]byte
	n.dk.sum(&h, 'x', key)
	span := int64(n.percent * 1e7) // percent/100 in 1e-9 units
	return int64(binary.BigEndian.Uint64(h[:8])%uint64(2*span+1)) - span
}

func (n *noise) apply(dst, src, key []byte) ([]byte, error) {
	switch string(src) {
	case "NaN", "Infinity", "-Infinity":
		return append(dst, src...), nil
	}
	f := n.factor(key)
	switch n.target.typ() {
	case "float4", "float8":
		x, err := strconv.ParseFloat(string(src), 64)
		if err != nil {
			return dst, errNotNumber
		}
		bitSize := 64
		if n.target.typ() == "float4" {
			bitSize = 32
		}
		return strconv.AppendFloat(dst, x*(1+float64(f)/1e9), 'g', -1, bitSize), nil
	}
	// Exact decimal arithmetic on the digits.
	s := src
	neg := false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	dot := bytes.IndexByte(s, '.')
	intPart, frac := s, []byte(nil)
	if dot >= 0 {
		intPart, frac = s[:dot], s[dot+1:]
	}
	if len(intPart)+len(frac) == 0 {
		return dst, errNotNumber
	}
	digits := make([]byte, 0, len(intPart)+len(frac))
	for _, part := range [][]byte{intPart, frac} {
		for _, c := range part {
			if !isDigit(c) {
				return dst, errNotNumber
			}
			digits = append(digits, c)
		}
	}
	v, _ := new(big.Int).SetString(string(digits), 10)
	if v == nil {
		v = new(big.Int)
	}
	// v += round(v * f / 1e9), half away from zero.
	d := new(big.Int).Mul(v, big.NewInt(f))
	q, r := new(big.Int).QuoRem(d, big.NewInt(1e9), new(big.Int))
	if r.CmpAbs(big.NewInt(5e8)) >= 0 {
		if d.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	v.Add(v, q)
	out := v.String()
	scale := len(frac)
	for len(out) <= scale {
		out = "0" + out
	}
	ip, fp := out[:len(out)-scale], out[len(out)-scale:]
	if t := n.target; t.Precision > 0 && len(ip) > t.Precision-t.Scale && ip != "0" {
		return dst, fmt.Errorf("noisy value does not fit numeric(%d,%d) of column %s", t.Precision, t.Scale, t.Column)
	}
	var res []byte
	if neg && v.Sign() != 0 {
		res = append(res, '-')
	}
	res = append(res, ip...)
	if dot >= 0 {
		res = append(res, '.')
		res = append(res, fp...)
	}
	switch n.target.typ() {
	case "int2", "int4", "int8":
		lo, hi := intRange(n.target)
		if x, ok := parseInt64(res); !ok || x < lo || x > hi {
			return dst, fmt.Errorf("noisy value does not fit type %s of column %s", n.target.typ(), n.target.Column)
		}
	}
	return append(dst, res...), nil
}
