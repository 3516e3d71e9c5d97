package masking

import (
	"bytes"
	"errors"
	"net/netip"
	"strconv"
)

var errNotIP = errors.New("value is not an IP address")

// ipTransform permutes the host bits of IPv4 and IPv6 addresses (after the
// first keep_prefix / keep_prefix6 bits) with a keyed Feistel permutation,
// so distinct addresses stay distinct. A "/N" netmask is kept; for the cidr
// type only the bits inside the netmask are permuted (host bits stay zero).
type ipTransform struct {
	dk           *domainKey
	keep4, keep6 int
	cidr         bool
}

func newIPTransform(dk *domainKey, o Options, t Target) (*ipTransform, error) {
	if o.KeepPrefix < 0 || o.KeepPrefix > 32 || o.KeepPrefix6 < 0 || o.KeepPrefix6 > 128 {
		return nil, errors.New("keep_prefix must be 0..32 and keep_prefix6 0..128")
	}
	dk.cipher()
	return &ipTransform{dk: dk, keep4: o.KeepPrefix, keep6: o.KeepPrefix6, cidr: t.typ() == "cidr"}, nil
}

func (*ipTransform) Bijective() bool { return true }

func (t *ipTransform) Append(dst, src []byte) ([]byte, error) {
	addrText, maskText := src, []byte(nil)
	if i := bytes.IndexByte(src, '/'); i >= 0 {
		addrText, maskText = src[:i], src[i:]
	}
	a, err := netip.ParseAddr(string(addrText))
	if err != nil || a.Zone() != "" {
		return dst, errNotIP
	}
	total := a.BitLen()
	end := total
	if maskText != nil {
		m, err := strconv.Atoi(string(maskText[1:]))
		if err != nil || m < 0 || m > total {
			return dst, errNotIP
		}
		if t.cidr {
			end = m
		}
	}
	keep := t.keep4
	tag := byte('4')
	if a.Is6() {
		keep, tag = t.keep6, '6'
	}
	if keep < end {
		b := a.As16()
		x := u128{hi: beUint64(b[:8]), lo: beUint64(b[8:])}
		// bits [keep, end) counted from the top of the address.
		shift := uint(total - end)
		w := uint(end - keep)
		v := shr128(x, shift)
		v = and128(v, w)
		p := newBitPerm(t.dk.cipher(), w, tag, t.dk.scratchPool())
		v = p.encrypt(v)
		x = andNot128(x, shl128(ones128(w), shift))
		x = or128(x, shl128(v, shift))
		putBE(b[:8], x.hi)
		putBE(b[8:], x.lo)
		if a.Is4() {
			a = netip.AddrFrom4([4]byte(b[12:]))
		} else {
			a = netip.AddrFrom16(b)
		}
	}
	dst = a.AppendTo(dst)
	return append(dst, maskText...), nil
}

func shr128(x u128, s uint) u128 {
	switch {
	case s == 0:
		return x
	case s >= 128:
		return u128{}
	case s >= 64:
		return u128{lo: x.hi >> (s - 64)}
	}
	return u128{hi: x.hi >> s, lo: x.lo>>s | x.hi<<(64-s)}
}

func shl128(x u128, s uint) u128 {
	switch {
	case s == 0:
		return x
	case s >= 128:
		return u128{}
	case s >= 64:
		return u128{hi: x.lo << (s - 64)}
	}
	return u128{hi: x.hi<<s | x.lo>>(64-s), lo: x.lo << s}
}

func ones128(w uint) u128 {
	if w <= 64 {
		return u128{lo: mask64(w)}
	}
	return u128{hi: mask64(w - 64), lo: ^uint64(0)}
}

func and128(x u128, w uint) u128 {
	m := ones128(w)
	return u128{hi: x.hi & m.hi, lo: x.lo & m.lo}
}

func andNot128(x, m u128) u128 { return u128{hi: x.hi &^ m.hi, lo: x.lo &^ m.lo} }
func or128(x, y u128) u128     { return u128{hi: x.hi | y.hi, lo: x.lo | y.lo} }
