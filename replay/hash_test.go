package replay

import "testing"

type hashTestRow struct {
	result int
	vals   []*string
}

func hashRow(vals ...*string) hashTestRow { return hashTestRow{vals: vals} }

func hashStr(v string) *string { return &v }

func hashTestRows(rows []hashTestRow) (ordered, multiset string) {
	h := NewRowHasher()
	for _, row := range rows {
		vals := make([][]byte, len(row.vals))
		for i, v := range row.vals {
			if v != nil {
				vals[i] = []byte(*v)
				if vals[i] == nil {
					vals[i] = []byte{}
				}
			}
		}
		h.Add(row.result, vals)
	}
	return h.Ordered(), h.Multiset()
}

func TestRowHasherProperties(t *testing.T) {
	base := []hashTestRow{hashRow(hashStr("1"), hashStr("a")), hashRow(hashStr("2"), hashStr("b")), hashRow(hashStr("3"), nil)}
	tests := []struct {
		name         string
		other        []hashTestRow
		sameOrdered  bool
		sameMultiset bool
	}{
		{"identical rows", []hashTestRow{hashRow(hashStr("1"), hashStr("a")), hashRow(hashStr("2"), hashStr("b")), hashRow(hashStr("3"), nil)}, true, true},
		{"permuted rows", []hashTestRow{hashRow(hashStr("3"), nil), hashRow(hashStr("1"), hashStr("a")), hashRow(hashStr("2"), hashStr("b"))}, false, true},
		{"duplicated row", []hashTestRow{hashRow(hashStr("1"), hashStr("a")), hashRow(hashStr("2"), hashStr("b")), hashRow(hashStr("3"), nil), hashRow(hashStr("2"), hashStr("b"))}, false, false},
		{"missing row", []hashTestRow{hashRow(hashStr("1"), hashStr("a")), hashRow(hashStr("2"), hashStr("b"))}, false, false},
		{"changed value", []hashTestRow{hashRow(hashStr("1"), hashStr("a")), hashRow(hashStr("2"), hashStr("B")), hashRow(hashStr("3"), nil)}, false, false},
		{"NULL vs empty string", []hashTestRow{hashRow(hashStr("1"), hashStr("a")), hashRow(hashStr("2"), hashStr("b")), hashRow(hashStr("3"), hashStr(""))}, false, false},
		{"value boundary moved", []hashTestRow{hashRow(hashStr("1a"), hashStr("")), hashRow(hashStr("2"), hashStr("b")), hashRow(hashStr("3"), nil)}, false, false},
		{"extra column", []hashTestRow{hashRow(hashStr("1"), hashStr("a"), nil), hashRow(hashStr("2"), hashStr("b")), hashRow(hashStr("3"), nil)}, false, false},
		{"row of another inner result", []hashTestRow{hashRow(hashStr("1"), hashStr("a")), hashRow(hashStr("2"), hashStr("b")), {result: 1, vals: []*string{hashStr("3"), nil}}}, false, false},
	}
	bo, bm := hashTestRows(base)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, m := hashTestRows(tt.other)
			if (o == bo) != tt.sameOrdered {
				t.Errorf("ordered hash equal = %v, want %v", o == bo, tt.sameOrdered)
			}
			if (m == bm) != tt.sameMultiset {
				t.Errorf("multiset hash equal = %v, want %v", m == bm, tt.sameMultiset)
			}
		})
	}
}

func TestRowHasherEmptyAndReset(t *testing.T) {
	h := NewRowHasher()
	const emptyOrdered = "e3b0c44298fc1c149afbf4c8996fb924" // SHA-256 of nothing, 128 bits
	if h.Ordered() != emptyOrdered || h.Multiset() != "00000000000000000000000000000000" || h.Rows() != 0 {
		t.Errorf("empty: %s %s %d", h.Ordered(), h.Multiset(), h.Rows())
	}
	h.Add(0, [][]byte{[]byte("x")})
	o1, m1 := h.Ordered(), h.Multiset()
	if h.Ordered() != o1 {
		t.Error("Ordered is not idempotent")
	}
	h.Reset()
	if h.Ordered() != emptyOrdered || h.Multiset() != "00000000000000000000000000000000" || h.Rows() != 0 {
		t.Error("Reset did not forget the rows")
	}
	h.Add(0, [][]byte{[]byte("x")})
	if h.Ordered() != o1 || h.Multiset() != m1 {
		t.Error("after Reset, the same row hashes differently")
	}
}

// The multiset hash wraps around 2^128 without losing commutativity.
func TestRowHasherManyRows(t *testing.T) {
	a, b := NewRowHasher(), NewRowHasher()
	const n = 5000
	for i := range n {
		a.Add(0, [][]byte{[]byte{byte(i), byte(i >> 8)}})
	}
	for i := n - 1; i >= 0; i-- {
		b.Add(0, [][]byte{[]byte{byte(i), byte(i >> 8)}})
	}
	if a.Multiset() != b.Multiset() || a.Ordered() == b.Ordered() || a.Rows() != n {
		t.Error("reversed large input: multiset must match, ordered must not")
	}
}

func BenchmarkRowHasher(b *testing.B) {
	h := NewRowHasher()
	row := [][]byte{[]byte("12345"), []byte("some text value"), nil, []byte("2025-01-01 00:00:00+00")}
	b.ReportAllocs()
	for b.Loop() {
		h.Add(0, row)
	}
}
