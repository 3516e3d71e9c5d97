package harness

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dbtwin/dbtwin/compare"
	"github.com/dbtwin/dbtwin/internal/atomicfile"
	"github.com/dbtwin/dbtwin/reports"
)

// DefaultFormats are the report formats written when none are named: every
// file format, and the terminal summary on standard output.
var DefaultFormats = []string{"terminal", "markdown", "junit", "json", "html"}

// WriteReports renders rep in each format: "terminal" to term, the others
// as files in dir (created if needed; each written whole or not at all).
// It returns the paths it wrote.
func WriteReports(rep *compare.Report, dir string, formats []string, term io.Writer) ([]string, error) {
	if len(formats) == 0 {
		formats = DefaultFormats
	}
	var written []string
	for _, name := range formats {
		r, err := reports.New(name)
		if err != nil {
			return written, err
		}
		if name == "terminal" {
			if err := r.Render(term, rep); err != nil {
				return written, fmt.Errorf("render terminal report: %w", err)
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return written, fmt.Errorf("create report directory: %w", err)
		}
		path := filepath.Join(dir, reports.Filename(r))
		f, err := atomicfile.Create(path)
		if err != nil {
			return written, err
		}
		if err := r.Render(f, rep); err != nil {
			f.Abort()
			return written, fmt.Errorf("render %s report: %w", name, err)
		}
		if err := f.Commit(); err != nil {
			return written, err
		}
		written = append(written, path)
	}
	return written, nil
}
