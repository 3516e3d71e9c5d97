package clone

import (
	"strings"
	"testing"
)

func TestWithoutKeys(t *testing.T) {
	// As pg_restore --list prints a schema archive's post-data entries.
	list := `;
; Archive created at 2026-12-06 21:30:00 UTC
;     dbname: src
;
; Selected TOC Entries:
;
3342; 2606 16401 CONSTRAINT public parent parent_pkey dbtwin
3346; 2606 16420 FK CONSTRAINT public child child_parent_id_fkey dbtwin
3347; 2606 16433 FK CONSTRAINT Ledger Entry Entry's parent dbtwin
3348; 2606 16440 FK CONSTRAINT public loose loose_parent dbtwin
3349; 2620 16420 TRIGGER public child audit dbtwin
`
	for _, tt := range []struct {
		name string
		oids []uint32
		want []string // the lines commented out
	}{
		{name: "none", oids: nil, want: nil},
		{name: "two keys", oids: []uint32{16420, 16433},
			want: []string{"3346; 2606 16420 FK CONSTRAINT", "3347; 2606 16433 FK CONSTRAINT"}},
		{name: "an OID that is not a key's entry", oids: []uint32{16401}, want: nil},
		{name: "a key absent from the archive", oids: []uint32{99999}, want: nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			keys := make([]constraint, len(tt.oids))
			for i, oid := range tt.oids {
				keys[i].oid = oid
			}
			out, n := withoutKeys([]byte(list), keys)
			var got []string
			for line := range strings.Lines(string(out)) {
				if rest, ok := strings.CutPrefix(line, ";"); ok && len(rest) > 0 && rest[0] >= '0' && rest[0] <= '9' {
					got = append(got, rest)
				}
			}
			if n != len(tt.want) || len(got) != len(tt.want) {
				t.Fatalf("withoutKeys left out %d entries: %q; want %q", n, got, tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("left out %q; want the entry %q", got[i], w)
				}
			}
			if strings.Count(string(out), "\n") != strings.Count(list, "\n") {
				t.Errorf("withoutKeys changed the number of lines:\n%s", out)
			}
		})
	}
}
