package replay

import (
	"reflect"
	"testing"
)

func TestParseParams(t *testing.T) {
	s := func(v string) *string { return &v }
	tests := []struct {
		name, in string
		want     []*string
		err      bool
	}{
		{"one", "$1 = '2'", []*string{s("2")}, false},
		{"quote doubled", "$1 = 'it''s'", []*string{s("it's")}, false},
		{"only quotes", "$1 = ''''''", []*string{s("''")}, false},
		{"null", "$1 = '3', $2 = NULL", []*string{s("3"), nil}, false},
		{"null first", "$1 = NULL, $2 = 'x'", []*string{nil, s("x")}, false},
		{"empty string", "$1 = ''", []*string{s("")}, false},
		{"comma and equals inside", "$1 = 'a, $2 = ''b''', $2 = 'c'", []*string{s("a, $2 = 'b'"), s("c")}, false},
		{"multi-line value", "$1 = 'x\n\ty ''q'''", []*string{s("x\n\ty 'q'")}, false},
		{"ten", "$1 = '1', $2 = '2', $3 = '3', $4 = '4', $5 = '5', $6 = '6', $7 = '7', $8 = '8', $9 = '9', $10 = '10'",
			[]*string{s("1"), s("2"), s("3"), s("4"), s("5"), s("6"), s("7"), s("8"), s("9"), s("10")}, false},
		{"unterminated", "$1 = 'abc", nil, true},
		{"out of order", "$2 = '1'", nil, true},
		{"unquoted", "$1 = 42", nil, true},
		{"trailing junk", "$1 = '1' x", nil, true},
		{"empty", "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := parseParams(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("parseParams(%q) error = %v, want error %v", tt.in, err, tt.err)
			}
			var got []*string
			for _, p := range ps {
				got = append(got, p.Value)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseParams(%q) = %v, want %v", tt.in, deref(got), deref(tt.want))
			}
		})
	}
}

func deref(ps []*string) []string {
	var out []string
	for _, p := range ps {
		if p == nil {
			out = append(out, "NULL")
		} else {
			out = append(out, "'"+*p+"'")
		}
	}
	return out
}
