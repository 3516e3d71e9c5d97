package masking

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
)

// BenchmarkFilterCopyText masks users-like COPY text rows (id, e-mail, full
// name and phone masked; account and timestamps kept).
// Run: go test -run '^$' -bench FilterCopyText -benchmem ./masking/
func BenchmarkFilterCopyText(b *testing.B) {
	p := testPlan(b, `version: 1
unlisted: keep
tables:
  users:
    id: {mask: int}
    email: email
    full_name: full_name
    phone: phone
`)
	tm := p.Table("users")
	cols := tm.Columns()
	var in bytes.Buffer
	const rows = 10000
	for i := range rows {
		fmt.Fprintf(&in, "%d\t%d\tuser%d.name@example-corp.com\tJane Q. Roe %d\t+1 (415) 555-%04d\t\\N\n", i+1, i%50, i, i, i%10000)
	}
	data := in.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FilterCopyText(context.Background(), io.Discard, bytes.NewReader(data), tm, cols); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}
