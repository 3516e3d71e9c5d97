package reports

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/dbtwin/dbtwin/compare"
)

// JSON writes the report itself, indented, after Sanitize: the format
// shards exchange (ReadJSON reads it back, Merge joins shards).
type JSON struct{}

// Name returns "json".
func (JSON) Name() string { return "json" }

// Filename returns "report.json".
func (JSON) Filename() string { return "report.json" }

// Render writes r as indented JSON with a final newline.
func (JSON) Render(w io.Writer, r *compare.Report) error {
	s, err := Sanitize(r)
	if err != nil {
		return fmt.Errorf("render json: %w", err)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("render json: %w", err)
	}
	return nil
}
