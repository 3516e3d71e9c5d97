package replay

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrefixMatch(t *testing.T) {
	tests := []struct {
		name, prefix, line string
		want               map[int]string // field → value; fields not listed must be absent
		sev, msg           string         // "" sev: must not match
	}{
		{"postgres default", "%m [%p] ", "2024-01-02 03:04:05.678 UTC [123] LOG:  statement: SELECT 1",
			map[int]string{pfTime: "2024-01-02 03:04:05.678 UTC", pfPID: "123"}, "LOG", "statement: SELECT 1"},
		{"debian, session", "%m [%p] %q%u@%d ", "2024-01-02 03:04:05.678 UTC [123] bob@shop ERROR:  boom",
			map[int]string{pfTime: "2024-01-02 03:04:05.678 UTC", pfPID: "123", pfUser: "bob", pfDB: "shop"}, "ERROR", "boom"},
		{"debian, postmaster stops at %q", "%m [%p] %q%u@%d ", "2024-01-02 03:04:05.678 UTC [1] LOG:  database system is ready",
			map[int]string{pfTime: "2024-01-02 03:04:05.678 UTC", pfPID: "1"}, "LOG", "database system is ready"},
		{"database with a space", "%m [%p] %u@%d ", "2024-01-02 03:04:05.678 UTC [7] bob@my db LOG:  x",
			map[int]string{pfTime: "2024-01-02 03:04:05.678 UTC", pfPID: "7", pfUser: "bob", pfDB: "my db"}, "LOG", "x"},
		{"pgbadger", "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
			"2024-01-02 03:04:05 UTC [42]: [3-1] user=app,db=prod,app=my app,client=10.0.0.7 LOG:  duration: 1.000 ms",
			map[int]string{pfTime: "2024-01-02 03:04:05 UTC", pfPID: "42", pfLine: "3", pfUser: "app", pfDB: "prod", pfApp: "my app", pfHost: "10.0.0.7"}, "LOG", "duration: 1.000 ms"},
		{"rds", "%t:%r:%u@%d:[%p]:", "2024-01-02 03:04:05 UTC:10.0.0.1(5432):app@prod:[99]:STATEMENT:  SELECT 1",
			map[int]string{pfTime: "2024-01-02 03:04:05 UTC", pfRemote: "10.0.0.1(5432)", pfUser: "app", pfDB: "prod", pfPID: "99"}, "STATEMENT", "SELECT 1"},
		{"azure", "%t-%c-", "2024-01-02 03:04:05 UTC-6571cd1e.2ae3-LOG:  statement: BEGIN",
			map[int]string{pfTime: "2024-01-02 03:04:05 UTC", pfSession: "6571cd1e.2ae3"}, "LOG", "statement: BEGIN"},
		{"epoch, start, sqlstate", "%n [%p] %s %e app=%a %u@%d: ",
			"1795634874.181 [3911] 2026-11-25 19:27:53 UTC 23505 app=x dbtwin@work: ERROR:  dup",
			map[int]string{pfTime: "1795634874.181", pfPID: "3911", pfSessStart: "2026-11-25 19:27:53 UTC", pfState: "23505", pfApp: "x", pfUser: "dbtwin", pfDB: "work"}, "ERROR", "dup"},
		{"two time escapes", "%m %t ", "2024-01-02 03:04:05.678 +03 2024-01-02 03:04:05 +03 LOG:  x",
			map[int]string{pfTime: "2024-01-02 03:04:05 +03"}, "LOG", "x"},
		{"numeric zone", "%m [%p] ", "2024-01-02 03:04:05.678 -0530 [1] LOG:  x",
			map[int]string{pfTime: "2024-01-02 03:04:05.678 -0530", pfPID: "1"}, "LOG", "x"},
		{"padding", "%-8p|%5e|", "123     |23505|DETAIL:  d",
			map[int]string{pfPID: "123", pfState: "23505"}, "DETAIL", "d"},
		{"right padding", "%8p|", "     123|LOG:  m", map[int]string{pfPID: "123"}, "LOG", "m"},
		{"percent and unknown escape", "%m %% %z[%p] ", "2024-01-02 03:04:05.678 UTC % [5] LOG:  m",
			map[int]string{pfTime: "2024-01-02 03:04:05.678 UTC", pfPID: "5"}, "LOG", "m"},
		{"vxid and xid", "%v %x ", "3/14 0 LOG:  m", map[int]string{pfVXID: "3/14", pfXID: "0"}, "LOG", "m"},
		{"empty vxid", "%v %x ", " 0 LOG:  m", map[int]string{pfVXID: "", pfXID: "0"}, "LOG", "m"},
		{"backend type with spaces", "%b: ", "client backend: LOG:  m", map[int]string{pfBackend: "client backend"}, "LOG", "m"},
		{"one space after severity", "%m [%p] ", "2024-01-02 03:04:05.678 UTC [1] LOG: m", nil, "", ""},
		{"unknown severity", "%m [%p] ", "2024-01-02 03:04:05.678 UTC [1] LOUD:  m", nil, "", ""},
		{"bad pid", "%m [%p] ", "2024-01-02 03:04:05.678 UTC [x1] LOG:  m", nil, "", ""},
		{"ms missing for %m", "%m [%p] ", "2024-01-02 03:04:05 UTC [1] LOG:  m", nil, "", ""},
		{"ms present for %t", "%t [%p] ", "2024-01-02 03:04:05.123 UTC [1] LOG:  m", nil, "", ""},
		{"continuation line", "%m [%p] ", "\t  FROM t", nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := CompilePrefix(tt.prefix)
			if err != nil {
				t.Fatal(err)
			}
			var m prefixMatch
			ok := p.match([]byte(tt.line), &m)
			if tt.sev == "" {
				if ok {
					t.Fatalf("matched %q, want no match", tt.line)
				}
				return
			}
			if !ok {
				t.Fatalf("%q does not match %q", tt.line, tt.prefix)
			}
			if m.sev != tt.sev || tt.line[m.msgStart:] != tt.msg {
				t.Errorf("severity %q message %q, want %q %q", m.sev, tt.line[m.msgStart:], tt.sev, tt.msg)
			}
			for f := 0; f < prefixFieldCount; f++ {
				want, listed := tt.want[f]
				got := m.value([]byte(tt.line), f)
				if !listed {
					if got != nil {
						t.Errorf("field %d = %q, want absent", f, got)
					}
					continue
				}
				if got == nil || string(got) != want {
					t.Errorf("field %d = %q, want %q", f, got, want)
				}
			}
		})
	}
}

func TestPrefixPathological(t *testing.T) {
	// Adjacent free-text escapes and a line with many candidate splits must
	// stay cheap (the backtracking budget) and simply not match.
	p, err := CompilePrefix("%u%d%a%h@%r@")
	if err != nil {
		t.Fatal(err)
	}
	line := []byte(strings.Repeat("@", 5000) + " LOG")
	var m prefixMatch
	if p.match(line, &m) {
		t.Error("matched a line with no severity")
	}
}

func TestDetectPrefixOnRealLogs(t *testing.T) {
	want := map[string]string{
		"stderr-debian-stmt.log":  "%m [%p] %q%u@%d ",
		"stderr-pgbadger-dur.log": "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
		"stderr-rds-both.log":     "%t:%r:%u@%d:[%p]:",
		"stderr-azure-stmt.log":   "%t-%c-",
	}
	for name, prefix := range want {
		b, err := os.ReadFile(filepath.Join("testdata", "logs", name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := DetectPrefix(b)
		if err != nil || got != prefix {
			t.Errorf("DetectPrefix(%s) = %q, %v; want %q", name, got, err, prefix)
		}
	}
}

func TestDetectPrefix(t *testing.T) {
	tests := []struct {
		name, head, want, err string
	}{
		{"plain default", "2024-01-02 03:04:05.678 UTC [1] LOG:  database system is ready\n2024-01-02 03:04:05.700 UTC [2] LOG:  statement: SELECT 1\n",
			"%m [%p] ", ""},
		{"debian beats default by backend lines",
			"2024-01-02 03:04:05.678 UTC [1] LOG:  ready\n2024-01-02 03:04:05.700 UTC [2] a@b LOG:  statement: SELECT 1\n\tFROM t\n2024-01-02 03:04:05.700 UTC [2] a@b LOG:  statement: SELECT 2\n",
			"%m [%p] %q%u@%d ", ""},
		{"cloud sql", "2024-01-02 03:04:05.678 UTC [2]: [1-1] db=shop,user=bob LOG:  statement: SELECT 1\n", "%m [%p]: [%l-1] db=%d,user=%u ", ""},
		{"cloud logging", "[2]: [1-1] db=shop,user=bob LOG:  statement: SELECT 1\n", "[%p]: [%l-1] db=%d,user=%u ", ""},
		{"heroku-style", ` sql_error_code = 00000 time_ms = "2024-01-02 03:04:05.678 UTC" pid="2" proc_start_time="2024-01-02 03:04:00 UTC" session_id="65940a10.2" vtid="3/4" tid="0" log_line="1" database="d" connection_source="1.2.3.4(5)" user="u" application_name="a" LOG:  statement: SELECT 1` + "\n",
			` sql_error_code = %e time_ms = "%m" pid="%p" proc_start_time="%s" session_id="%c" vtid="%v" tid="%x" log_line="%l" %qdatabase="%d" connection_source="%r" user="%u" application_name="%a" `, ""},
		{"nothing matches", "hello world\n", "", "none of the"},
		{"no complete line", "2024-01-02 03:04:05.678 UTC [1] LOG:  x", "", "no complete line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DetectPrefix([]byte(tt.head))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("DetectPrefix error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("DetectPrefix = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestDetectFormat(t *testing.T) {
	tests := []struct {
		name, head string
		want       Format
		err        bool
	}{
		{"empty", "", FormatStderr, false},
		{"stderr", "2024-01-02 03:04:05.678 UTC [1] LOG:  x\n", FormatStderr, false},
		{"csvlog", `2024-01-02 03:04:05.678 UTC,"u","d",1,"[local]",65940a10.1,1,"idle",2024-01-02 03:04:00 UTC,3/1,0,LOG,00000,"statement: SELECT 1",,,,,,,,,"psql","client backend",,0` + "\n", FormatCSVLog, false},
		{"jsonlog", `{"timestamp":"2024-01-02 03:04:05.678 UTC","pid":1,"error_severity":"LOG","message":"x"}` + "\n", FormatJSONLog, false},
		{"jsonl", "\n" + `{"dbtwin_workload":1}` + "\n", FormatJSONL, false},
		{"truncated jsonl header", `{"dbtwin_workload":1,"source":"`, FormatJSONL, false},
		{"other json", `{"a":1}` + "\n", "", true},
		{"broken json", `{"a":` + "\n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DetectFormat([]byte(tt.head))
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("DetectFormat = %q, %v; want %q (error %v)", got, err, tt.want, tt.err)
			}
		})
	}
}
