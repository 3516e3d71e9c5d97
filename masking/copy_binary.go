package masking

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
)

// Binary COPY: the format PostgreSQL's COPY ... (FORMAT binary) reads and
// writes. A stream is a header (signature, flags, extension area), then one
// tuple per row (int16 field count, then per field an int32 length, -1 for
// NULL, and that many bytes of the type's send/recv form), then an int16 -1
// trailer. Every integer is big-endian.
//
// Masking a table in binary spares both servers the text output and input
// functions of every column (timestamps and numerics cost most), which is
// what keeps a masked clone close to an unmasked one. The transforms still
// read and write the text form: a column they touch is converted from its
// binary form to exactly the text PostgreSQL would print (DateStyle ISO,
// UTC) and back, by a binaryCodec. A table with a masked column of a type
// that has no codec here is filtered in text format instead.

// copySignature opens every binary COPY stream.
var copySignature = []byte("PGCOPY\n\xff\r\n\x00")

// binaryCodec converts one type between its binary COPY form and its text
// form.
type binaryCodec struct {
	// toText appends the text form of a binary value.
	toText func(dst, v []byte) ([]byte, error)
	// fromText appends the binary form of a text value.
	fromText func(dst, s []byte) ([]byte, error)
}

// binaryCodecFor returns the codec for a base type named as pg_type names
// it, and false for a type that has none (its table is masked in text).
func binaryCodecFor(typ string) (binaryCodec, bool) {
	switch typ {
	case "text", "varchar", "bpchar", "name", "citext", "json":
		// The binary form of these is the text itself (client encoding
		// UTF8, as the clone's sessions use).
		return binaryCodec{toText: appendSame, fromText: appendSame}, true
	case "jsonb":
		return binaryCodec{toText: jsonbToText, fromText: jsonbFromText}, true
	case "int2":
		return intCodec(2), true
	case "int4":
		return intCodec(4), true
	case "int8":
		return intCodec(8), true
	case "uuid":
		return binaryCodec{toText: uuidToText, fromText: uuidFromText}, true
	case "date":
		return binaryCodec{toText: dateToText, fromText: dateFromText}, true
	case "inet":
		return binaryCodec{toText: inetToText(false), fromText: inetFromText(false)}, true
	case "cidr":
		return binaryCodec{toText: inetToText(true), fromText: inetFromText(true)}, true
	}
	return binaryCodec{}, false
}

func appendSame(dst, v []byte) ([]byte, error) { return append(dst, v...), nil }

// jsonb's binary form is a version byte (1) and the document as text.
func jsonbToText(dst, v []byte) ([]byte, error) {
	if len(v) == 0 || v[0] != 1 {
		return dst, errors.New("jsonb: unsupported binary version")
	}
	return append(dst, v[1:]...), nil
}

func jsonbFromText(dst, s []byte) ([]byte, error) {
	return append(append(dst, 1), s...), nil
}

// intCodec: two's complement, big-endian, size bytes.
func intCodec(size int) binaryCodec {
	return binaryCodec{
		toText: func(dst, v []byte) ([]byte, error) {
			switch {
			case len(v) != size:
				return dst, fmt.Errorf("int%d: %d bytes", size, len(v))
			case size == 2:
				return strconv.AppendInt(dst, int64(int16(binary.BigEndian.Uint16(v))), 10), nil
			case size == 4:
				return strconv.AppendInt(dst, int64(int32(binary.BigEndian.Uint32(v))), 10), nil
			}
			return strconv.AppendInt(dst, int64(binary.BigEndian.Uint64(v)), 10), nil
		},
		fromText: func(dst, s []byte) ([]byte, error) {
			n, err := strconv.ParseInt(string(bytes.TrimSpace(s)), 10, size*8)
			if err != nil {
				return dst, fmt.Errorf("int%d: %w", size, err)
			}
			switch size {
			case 2:
				return binary.BigEndian.AppendUint16(dst, uint16(n)), nil
			case 4:
				return binary.BigEndian.AppendUint32(dst, uint32(n)), nil
			}
			return binary.BigEndian.AppendUint64(dst, uint64(n)), nil
		},
	}
}

// uuid: 16 bytes; text 8-4-4-4-12 lower-case hex digits.
func uuidToText(dst, v []byte) ([]byte, error) {
	if len(v) != 16 {
		return dst, fmt.Errorf("uuid: %d bytes", len(v))
	}
	return appendUUID(dst, (*[16]byte)(v)), nil
}

func uuidFromText(dst, s []byte) ([]byte, error) {
	var u [16]byte
	if !parseUUID(&u, s) {
		return dst, fmt.Errorf("uuid: invalid input")
	}
	return append(dst, u[:]...), nil
}

// date: int32 days since 2000-01-01, with the extremes meaning -infinity
// and infinity. The conversions are PostgreSQL's own (date2j, j2date in
// src/backend/utils/adt/datetime.c), so every date it can store prints as
// date_out prints it with DateStyle ISO.
const (
	postgresEpochJDate = 2451545 // date2j(2000, 1, 1)
	dateNoBegin        = -1 << 31
	dateNoEnd          = 1<<31 - 1
)

func date2j(year, month, day int) int {
	if month > 2 {
		month++
		year += 4800
	} else {
		month += 13
		year += 4799
	}
	century := year / 100
	julian := year*365 - 32167
	julian += year/4 - century + century/4
	julian += 7834*month/256 + day
	return julian
}

func j2date(jd int) (year, month, day int) {
	julian := uint32(jd)
	julian += 32044
	quad := julian / 146097
	extra := (julian-quad*146097)*4 + 3
	julian += 60 + quad*3 + extra/146097
	quad = julian / 1461
	julian -= quad * 1461
	y := julian * 4 / 1461
	if y != 0 {
		julian = (julian+305)%365 + 123
	} else {
		julian = (julian+306)%366 + 123
	}
	y += quad * 4
	year = int(y) - 4800
	quad = julian * 2141 / 65536
	day = int(julian - 7834*quad/256)
	month = int((quad+10)%12 + 1)
	return year, month, day
}

func dateToText(dst, v []byte) ([]byte, error) {
	if len(v) != 4 {
		return dst, fmt.Errorf("date: %d bytes", len(v))
	}
	d := int32(binary.BigEndian.Uint32(v))
	switch d {
	case dateNoBegin:
		return append(dst, "-infinity"...), nil
	case dateNoEnd:
		return append(dst, "infinity"...), nil
	}
	y, m, day := j2date(int(d) + postgresEpochJDate)
	bc := y <= 0
	if bc {
		y = 1 - y
	}
	dst = appendPadded(dst, y, 4)
	dst = append(dst, '-')
	dst = appendPadded(dst, m, 2)
	dst = append(dst, '-')
	dst = appendPadded(dst, day, 2)
	if bc {
		dst = append(dst, " BC"...)
	}
	return dst, nil
}

// dateFromText reads the ISO form dateToText writes (what the date
// transforms produce): YYYY-MM-DD with an optional " BC", or ±infinity.
func dateFromText(dst, s []byte) ([]byte, error) {
	var d int64
	switch string(s) {
	case "infinity":
		d = dateNoEnd
	case "-infinity":
		d = dateNoBegin
	default:
		t := s
		bc := bytes.HasSuffix(t, []byte(" BC"))
		if bc {
			t = t[:len(t)-3]
		}
		parts := bytes.Split(t, []byte{'-'})
		if len(parts) != 3 || len(parts[0]) < 4 || len(parts[1]) != 2 || len(parts[2]) != 2 {
			return dst, fmt.Errorf("date: not YYYY-MM-DD")
		}
		var f [3]int
		for i, p := range parts {
			n, err := strconv.Atoi(string(p))
			if err != nil || n < 0 || (i == 0 && n > 5874897) {
				return dst, fmt.Errorf("date: invalid input")
			}
			f[i] = n
		}
		y := f[0]
		if bc {
			y = 1 - y
		}
		j := date2j(y, f[1], f[2])
		if yy, mm, dd := j2date(j); yy != y || mm != f[1] || dd != f[2] {
			return dst, fmt.Errorf("date: out of range")
		}
		d = int64(j - postgresEpochJDate)
	}
	return binary.BigEndian.AppendUint32(dst, uint32(int32(d))), nil
}

func appendPadded(dst []byte, n, width int) []byte {
	var buf [20]byte
	b := strconv.AppendInt(buf[:0], int64(n), 10)
	for i := len(b); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, b...)
}

// inet and cidr: family (2 IPv4, 3 IPv6), prefix bits, is-cidr flag,
// address length, address bytes.
const (
	pgsqlAFInet  = 2
	pgsqlAFInet6 = 3
)

// inetToText prints as network_out does (pg_inet_net_ntop): IPv4 as all
// four octets, IPv6 with the longest run of two or more zero groups
// shortened to "::" and an embedded IPv4 address written in dotted form,
// "/bits" unless the prefix is the whole address (cidr: always).
func inetToText(cidr bool) func(dst, v []byte) ([]byte, error) {
	return func(dst, v []byte) ([]byte, error) {
		if len(v) < 4 || int(v[3]) != len(v)-4 {
			return dst, errors.New("inet: malformed binary value")
		}
		family, bits, addr := v[0], int(v[1]), v[4:]
		maxBits := 32
		switch {
		case family == pgsqlAFInet && len(addr) == 4:
			for i, b := range addr {
				if i > 0 {
					dst = append(dst, '.')
				}
				dst = strconv.AppendUint(dst, uint64(b), 10)
			}
		case family == pgsqlAFInet6 && len(addr) == 16:
			maxBits = 128
			dst = appendIPv6(dst, addr)
		default:
			return dst, fmt.Errorf("inet: unknown family %d", family)
		}
		if bits > maxBits {
			return dst, fmt.Errorf("inet: %d prefix bits", bits)
		}
		if bits != maxBits || cidr {
			dst = append(dst, '/')
			dst = strconv.AppendInt(dst, int64(bits), 10)
		}
		return dst, nil
	}
}

// appendIPv6 is inet_net_ntop_ipv6 of src/port/inet_net_ntop.c.
func appendIPv6(dst, addr []byte) []byte {
	var words [8]uint16
	for i := range words {
		words[i] = binary.BigEndian.Uint16(addr[2*i:])
	}
	bestBase, bestLen, curBase, curLen := -1, 0, -1, 0
	for i, w := range words {
		if w == 0 {
			if curBase == -1 {
				curBase, curLen = i, 1
			} else {
				curLen++
			}
			continue
		}
		if curBase != -1 {
			if bestBase == -1 || curLen > bestLen {
				bestBase, bestLen = curBase, curLen
			}
			curBase = -1
		}
	}
	if curBase != -1 && (bestBase == -1 || curLen > bestLen) {
		bestBase, bestLen = curBase, curLen
	}
	if bestBase != -1 && bestLen < 2 {
		bestBase = -1
	}
	for i := 0; i < len(words); i++ {
		if bestBase != -1 && i >= bestBase && i < bestBase+bestLen {
			if i == bestBase {
				dst = append(dst, ':')
			}
			continue
		}
		if i != 0 {
			dst = append(dst, ':')
		}
		if i == 6 && bestBase == 0 && (bestLen == 6 || (bestLen == 7 && words[7] != 1) || (bestLen == 5 && words[5] == 0xffff)) {
			for k, b := range addr[12:] {
				if k > 0 {
					dst = append(dst, '.')
				}
				dst = strconv.AppendUint(dst, uint64(b), 10)
			}
			return dst
		}
		dst = strconv.AppendUint(dst, uint64(words[i]), 16)
	}
	if bestBase != -1 && bestBase+bestLen == len(words) {
		dst = append(dst, ':')
	}
	return dst
}

// inetFromText reads an address with an optional /bits, as the ip
// transforms write it.
func inetFromText(cidr bool) func(dst, s []byte) ([]byte, error) {
	return func(dst, s []byte) ([]byte, error) {
		str := string(s)
		var addr netip.Addr
		var bits int
		var err error
		if i := bytes.IndexByte(s, '/'); i >= 0 {
			var p netip.Prefix
			p, err = netip.ParsePrefix(str)
			addr, bits = p.Addr(), p.Bits()
		} else {
			addr, err = netip.ParseAddr(str)
			bits = addr.BitLen()
		}
		if err != nil || addr.Zone() != "" {
			return dst, fmt.Errorf("inet: invalid input")
		}
		family := byte(pgsqlAFInet)
		if addr.Is6() {
			family = pgsqlAFInet6
		}
		raw := addr.AsSlice()
		isCidr := byte(0)
		if cidr {
			isCidr = 1
		}
		dst = append(dst, family, byte(bits), isCidr, byte(len(raw)))
		return append(dst, raw...), nil
	}
}

// binaryCodecs returns, by position, the codecs of the columns the filter
// decodes or encodes, and false when one of them has none.
func (f *copyFilter) binaryCodecs() ([]binaryCodec, bool) {
	codecs := make([]binaryCodec, len(f.cols))
	for i, cp := range f.cols {
		if !f.decode[i] && cp.action != Mask {
			continue
		}
		c, ok := binaryCodecFor(cp.typ)
		if !ok {
			return nil, false
		}
		codecs[i] = c
	}
	return codecs, true
}

// CanFilterBinary reports whether FilterCopyBinary can mask a COPY of
// columns: whether every column it transforms or reads has a type whose
// binary form it can convert (text types, json/jsonb, integers, uuid,
// date, inet/cidr).
func (tm *TableMasker) CanFilterBinary(columns []string) bool {
	f, err := newCopyFilter(tm, columns)
	if err != nil {
		return false
	}
	_, ok := f.binaryCodecs()
	return ok
}

// FilterCopyBinary is FilterCopyText for a stream in binary COPY format:
// the same transforms give the same values (masked values are converted to
// their text form, transformed and converted back), kept columns pass
// through byte for byte, "null" columns become NULL and "default" columns
// are dropped. It fails for a table CanFilterBinary refuses. Memory is
// bounded by one row.
func FilterCopyBinary(ctx context.Context, dst io.Writer, src io.Reader, tm *TableMasker, columns []string) (rows int64, err error) {
	if tm == nil {
		return 0, errors.New("filter copy: no table masker (the plan masks nothing in this table: copy it unchanged)")
	}
	f, err := newCopyFilter(tm, columns)
	if err != nil {
		return 0, err
	}
	codecs, ok := f.binaryCodecs()
	if !ok {
		return 0, fmt.Errorf("mask table %s: a masked column's type has no binary conversion: copy the table in text format", tm.table)
	}
	r := bufio.NewReaderSize(src, 64<<10)
	w := bufio.NewWriterSize(dst, 64<<10)
	fail := func(format string, args ...any) error {
		return fmt.Errorf("mask table %s: binary COPY: "+format, append([]any{tm.table}, args...)...)
	}

	var hdr [19]byte
	if _, err := io.ReadFull(r, hdr[:11]); err != nil || !bytes.Equal(hdr[:11], copySignature) {
		return 0, fail("not a binary COPY stream")
	}
	if _, err := io.ReadFull(r, hdr[11:]); err != nil {
		return 0, fail("read header: %w", err)
	}
	if flags := binary.BigEndian.Uint32(hdr[11:]); flags&(1<<16) != 0 {
		return 0, fail("rows carry OIDs")
	}
	if ext := binary.BigEndian.Uint32(hdr[15:]); ext > 0 {
		if _, err := r.Discard(int(ext)); err != nil {
			return 0, fail("read header extension: %w", err)
		}
	}
	w.Write(copySignature)
	w.Write(make([]byte, 8)) // flags 0, no header extension

	outFields := 0
	for _, cp := range f.cols {
		if cp.action != Default {
			outFields++
		}
	}
	n := len(f.cols)
	var row, enc []byte
	var word [4]byte
	for {
		if rows&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return rows, fmt.Errorf("mask table %s: %w", tm.table, err)
			}
		}
		if err := readFull(r, word[:2]); err != nil {
			return rows, fail("row %d: read: %w", rows+1, err)
		}
		count := int16(binary.BigEndian.Uint16(word[:2]))
		if count == -1 {
			break
		}
		if int(count) != n {
			return rows, fail("row %d: %d fields, want %d", rows+1, count, n)
		}
		// The row as it came, length words included, so that a run of
		// kept columns goes out as one slice of it.
		row = row[:0]
		for i := 0; i < n; i++ {
			f.starts[i] = len(row)
			row = append(row, 0, 0, 0, 0)
			if err := readFull(r, row[len(row)-4:]); err != nil {
				return rows, fail("row %d: read: %w", rows+1, err)
			}
			size := int32(binary.BigEndian.Uint32(row[len(row)-4:]))
			f.nulls[i] = size < 0
			if size <= 0 {
				continue
			}
			if len(row)+int(size) > copyLimit {
				return rows, fail("row %d: longer than %d bytes", rows+1, copyLimit)
			}
			row = slices.Grow(row, int(size))
			row = row[:len(row)+int(size)]
			if err := readFull(r, row[len(row)-int(size):]); err != nil {
				return rows, fail("row %d: read: %w", rows+1, err)
			}
		}
		// Slices into row only once it stops growing.
		for i := 0; i < n; i++ {
			start := f.starts[i] + 4
			end := len(row)
			if i+1 < n {
				end = f.starts[i+1]
			}
			f.fields[i] = row[start:end]
			if f.decode[i] && !f.nulls[i] {
				if f.orig[i], err = codecs[i].toText(f.orig[i][:0], f.fields[i]); err != nil {
					return rows, fmt.Errorf("mask table %s row %d column %s: %w", tm.table, rows+1, f.cols[i].name, err)
				}
			}
		}
		if err := f.mask(rows + 1); err != nil {
			return rows, err
		}
		w.Write(binary.BigEndian.AppendUint16(word[:0], uint16(outFields)))
		for i := 0; i < n; i++ {
			cp := f.cols[i]
			switch {
			case cp.action == Default:
			case cp.action == Keep:
				j := i
				for j+1 < n && f.cols[j+1].action == Keep {
					j++
				}
				w.Write(row[f.starts[i] : f.starts[j]+4+len(f.fields[j])])
				i = j
			case f.outNull[i]:
				w.Write([]byte{0xff, 0xff, 0xff, 0xff})
			default:
				if enc, err = codecs[i].fromText(enc[:0], f.out[i]); err != nil {
					return rows, fmt.Errorf("mask table %s row %d column %s: %s: %w", tm.table, rows+1, cp.name, cp.decision.Spec.Transform, err)
				}
				w.Write(binary.BigEndian.AppendUint32(word[:0], uint32(len(enc))))
				w.Write(enc)
			}
		}
		rows++
	}
	w.Write([]byte{0xff, 0xff})
	if err := w.Flush(); err != nil {
		return rows, fmt.Errorf("mask table %s: write: %w", tm.table, err)
	}
	return rows, nil
}

// readFull fills p from r: a copy out of r's buffer when it holds enough
// (most fields), io.ReadFull otherwise.
func readFull(r *bufio.Reader, p []byte) error {
	if len(p) <= r.Buffered() {
		b, _ := r.Peek(len(p))
		copy(p, b)
		_, err := r.Discard(len(p))
		return err
	}
	_, err := io.ReadFull(r, p)
	return err
}
