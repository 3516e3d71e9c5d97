package replay

import (
	"bytes"
	"strconv"
	"time"
)

// timeParser turns log timestamps ("2006-01-02 15:04:05.000 MST", with or
// without milliseconds, or epoch "1700000000.123") into times. It caches the
// last second and the zones it has resolved, because consecutive log lines
// nearly always share both.
type timeParser struct {
	loc    *time.Location
	zones  map[string]*time.Location
	warned map[string]bool
	st     *statsKeeper

	lastKey []byte // "2006-01-02 15:04:05 MST" of the last parse
	lastSec time.Time
	keyBuf  []byte
}

func newTimeParser(loc *time.Location, st *statsKeeper) *timeParser {
	return &timeParser{loc: loc, zones: map[string]*time.Location{}, warned: map[string]bool{}, st: st}
}

// parse parses a timestamp as printed by %m, %t, %s, csvlog or jsonlog.
func (tp *timeParser) parse(b []byte, line int64) (time.Time, bool) {
	n := timestampLen(b)
	if n == 0 {
		return time.Time{}, false
	}
	b = b[:n]
	ms := 0
	key := b
	if b[19] == '.' {
		ms = int(b[20]-'0')*100 + int(b[21]-'0')*10 + int(b[22]-'0')
		// The cache key skips the milliseconds: same second, same zone.
		key = append(append(tp.keyBuf[:0], b[:19]...), b[23:]...)
	}
	if tp.lastKey != nil && bytes.Equal(key, tp.lastKey) {
		return tp.lastSec.Add(time.Duration(ms) * time.Millisecond), true
	}
	zone := string(b[bytes.LastIndexByte(b, ' ')+1:])
	loc := tp.zone(zone, b, line)
	num := func(i, j int) int {
		v := 0
		for _, c := range b[i:j] {
			v = v*10 + int(c-'0')
		}
		return v
	}
	sec := time.Date(num(0, 4), time.Month(num(5, 7)), num(8, 10), num(11, 13), num(14, 16), num(17, 19), 0, loc)
	tp.lastKey = append(tp.lastKey[:0], key...)
	tp.lastSec = sec
	return sec.Add(time.Duration(ms) * time.Millisecond), true
}

// zone resolves a time zone abbreviation: UTC and GMT, numeric offsets
// ("+03", "-0530", "+05:30"), or an abbreviation of ReaderOptions.TimeZone.
// Anything else is read as UTC, with one warning per abbreviation.
func (tp *timeParser) zone(name string, ts []byte, line int64) *time.Location {
	if loc, ok := tp.zones[name]; ok {
		return loc
	}
	loc := time.UTC
	switch {
	case name == "UTC" || name == "GMT" || name == "Z":
	case name[0] == '+' || name[0] == '-':
		if off, ok := parseOffset(name[1:]); ok {
			if name[0] == '-' {
				off = -off
			}
			loc = time.FixedZone(name, off)
		} else {
			tp.warnZone(name, line)
		}
	default:
		if tp.loc != nil {
			if t, err := time.ParseInLocation("2006-01-02 15:04:05 MST", string(ts[:19])+" "+name, tp.loc); err == nil && t.Location() == tp.loc {
				loc = tp.loc
				break
			}
		}
		tp.warnZone(name, line)
	}
	tp.zones[name] = loc
	return loc
}

func (tp *timeParser) warnZone(name string, line int64) {
	if tp.warned[name] || tp.st == nil {
		return
	}
	tp.warned[name] = true
	tp.st.warn(line, "time zone "+strconv.Quote(name)+" unknown: its times are read as UTC (set the reader's TimeZone to the server's log_timezone)", nil)
}

// parseOffset parses "03", "0530" or "05:30" into seconds.
func parseOffset(s string) (int, bool) {
	if len(s) == 5 && s[2] == ':' {
		s = s[:2] + s[3:]
	}
	if (len(s) != 2 && len(s) != 4) || digits([]byte(s)) != len(s) {
		return 0, false
	}
	h, _ := strconv.Atoi(s[:2])
	m := 0
	if len(s) == 4 {
		m, _ = strconv.Atoi(s[2:])
	}
	return h*3600 + m*60, true
}

// parseEpoch parses %n: seconds since the epoch with milliseconds.
func parseEpoch(b []byte) (time.Time, bool) {
	i := bytes.IndexByte(b, '.')
	if i <= 0 || len(b)-i != 4 {
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(string(b[:i]), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	ms, err := strconv.Atoi(string(b[i+1:]))
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(sec, int64(ms)*int64(time.Millisecond)).UTC(), true
}
