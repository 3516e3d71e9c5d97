package masking

import (
	"context"
	"io"
)

// MaskTable lets a Plan mask a clone while it streams (it implements
// clone.Masker without importing package clone). For a table with nothing
// to mask it returns a nil filter, and the table is copied as raw binary
// COPY bytes. Otherwise the filter is FilterCopyText with this table's
// masker, and targetColumns leaves out the columns decided "default".
//
// The source session must use DateStyle ISO; the clone's sessions do.
func (p *Plan) MaskTable(table string, columns []string) (filter func(ctx context.Context, dst io.Writer, src io.Reader) (int64, error), targetColumns []string) {
	tm := p.Table(table)
	if tm == nil {
		return nil, nil
	}
	cols := append([]string(nil), columns...)
	return func(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
		return FilterCopyText(ctx, dst, src, tm, cols)
	}, tm.TargetColumns(cols)
}
