package replay

import (
	"strconv"
	"unicode/utf8"
)

// appendResult appends r as one JSON line, byte for byte what encoding/json
// (with HTML escaping off) writes for it, several times faster: a replay
// writes one per statement, and reflection-based encoding was a fifth of
// the replay's CPU time. TestAppendResultMatchesEncodingJSON keeps the two
// in step; a field added to Result must be added here too.
func appendResult(b []byte, r *Result) []byte {
	b = append(b, `{"session":`...)
	b = appendJSONString(b, r.Session)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, r.Seq, 10)
	if r.Database != "" {
		b = append(b, `,"database":`...)
		b = appendJSONString(b, r.Database)
	}
	b = append(b, `,"sql":`...)
	b = appendJSONString(b, r.SQL)
	if r.Fingerprint != "" {
		b = append(b, `,"fingerprint":`...)
		b = appendJSONString(b, r.Fingerprint)
	}
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(r.Status))
	if r.SQLState != "" {
		b = append(b, `,"sqlstate":`...)
		b = appendJSONString(b, r.SQLState)
	}
	if r.Message != "" {
		b = append(b, `,"message":`...)
		b = appendJSONString(b, r.Message)
	}
	if r.Tag != "" {
		b = append(b, `,"tag":`...)
		b = appendJSONString(b, r.Tag)
	}
	if r.Statements != 0 {
		b = append(b, `,"statements":`...)
		b = strconv.AppendInt(b, int64(r.Statements), 10)
	}
	if len(r.Columns) > 0 {
		b = append(b, `,"columns":[`...)
		for i, c := range r.Columns {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendJSONString(b, c.Name)
			b = append(b, `,"type":`...)
			b = strconv.AppendUint(b, uint64(c.TypeOID), 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"rows":`...)
	b = strconv.AppendInt(b, r.Rows, 10)
	if r.OrderedHash != "" {
		b = append(b, `,"ordered_hash":`...)
		b = appendJSONString(b, r.OrderedHash)
	}
	if r.MultisetHash != "" {
		b = append(b, `,"multiset_hash":`...)
		b = appendJSONString(b, r.MultisetHash)
	}
	if len(r.Sample) > 0 {
		b = append(b, `,"sample":[`...)
		for i, row := range r.Sample {
			if i > 0 {
				b = append(b, ',')
			}
			if row == nil {
				b = append(b, "null"...)
				continue
			}
			b = append(b, '[')
			for j, v := range row {
				if j > 0 {
					b = append(b, ',')
				}
				if v == nil {
					b = append(b, "null"...)
				} else {
					b = appendJSONString(b, *v)
				}
			}
			b = append(b, ']')
		}
		b = append(b, ']')
	}
	if r.SampleTruncated {
		b = append(b, `,"sample_truncated":true`...)
	}
	b = append(b, `,"duration_ns":`...)
	b = strconv.AppendInt(b, int64(r.Duration), 10)
	if r.LockWait != nil {
		b = append(b, `,"lock_wait":{"blocked_by":`...)
		if r.LockWait.BlockedBy == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '[')
			for i, s := range r.LockWait.BlockedBy {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, s)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if r.Captured != nil {
		b = append(b, `,"captured_error":{`...)
		if r.Captured.SQLState != "" {
			b = append(b, `"sqlstate":`...)
			b = appendJSONString(b, r.Captured.SQLState)
			b = append(b, ',')
		}
		b = append(b, `"message":`...)
		b = appendJSONString(b, r.Captured.Message)
		b = append(b, '}')
	}
	return append(b, '}', '\n')
}

// appendJSONString appends s as a JSON string the way encoding/json does
// without HTML escaping: control characters escaped, invalid UTF-8
// replaced by U+FFFD, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
