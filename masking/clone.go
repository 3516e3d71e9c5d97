package masking

import (
	"context"
	"io"
)

// MaskTable lets a Plan mask a clone while it streams (it implements
// clone.Masker without importing package clone). For a table with nothing
// to mask it returns nil filters, and the table is copied as raw binary
// COPY bytes. Otherwise text is FilterCopyText with this table's masker;
// binary is FilterCopyBinary where every column the masker converts has a
// binary form it knows (CanFilterBinary), nil where not; targetColumns
// leaves out the columns decided "default".
//
// The source session must use DateStyle ISO and TimeZone UTC; the clone's
// sessions do.
func (p *Plan) MaskTable(table string, columns []string) (text, binary func(ctx context.Context, dst io.Writer, src io.Reader) (int64, error), targetColumns []string) {
	tm := p.Table(table)
	if tm == nil {
		return nil, nil, nil
	}
	cols := append([]string(nil), columns...)
	text = func(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
		return FilterCopyText(ctx, dst, src, tm, cols)
	}
	if tm.CanFilterBinary(cols) {
		binary = func(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
			return FilterCopyBinary(ctx, dst, src, tm, cols)
		}
	}
	return text, binary, tm.TargetColumns(cols)
}

// ChangedColumns implements clone.Masker: the columns of table (or of the
// table it is a partition of) whose values the masked clone changes, whose
// planner statistics the clone therefore gathers from the masked rows.
func (p *Plan) ChangedColumns(table string) []string {
	tm := p.Table(table)
	if tm == nil {
		return nil
	}
	return tm.Changed()
}
