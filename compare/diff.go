package compare

import (
	"fmt"
	"strings"

	"github.com/sergi/go-diff/diffmatchpatch"
)

// diffContext is how many equal lines are kept around each change.
const diffContext = 2

// DiffText diffs two texts line by line with go-diff (diffmatchpatch line
// mode) and returns at most maxLines lines: every change with up to two
// equal lines of context around it, longer equal stretches and anything
// past maxLines elided with a DiffElided line saying how many lines were
// left out. It is deterministic (no diff time limit). Renderers use it
// for EXPLAIN plans; compare uses it for row samples.
func DiffText(a, b string, maxLines int) []DiffLine {
	dmp := diffmatchpatch.New()
	dmp.DiffTimeout = 0
	ra, rb, lines := dmp.DiffLinesToRunes(withNewline(a), withNewline(b))
	diffs := dmp.DiffCharsToLines(dmp.DiffMainRunes(ra, rb, false), lines)
	var all []DiffLine
	for _, d := range diffs {
		op := DiffEqual
		switch d.Type {
		case diffmatchpatch.DiffDelete:
			op = DiffDelete
		case diffmatchpatch.DiffInsert:
			op = DiffInsert
		}
		for _, l := range strings.SplitAfter(d.Text, "\n") {
			if l == "" {
				continue
			}
			all = append(all, DiffLine{Op: op, Text: strings.TrimSuffix(l, "\n")})
		}
	}
	return trimDiff(all, maxLines)
}

func withNewline(s string) string {
	if s == "" || strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}

// trimDiff keeps changes with diffContext lines around them, then caps
// the result at maxLines.
func trimDiff(all []DiffLine, maxLines int) []DiffLine {
	keep := make([]bool, len(all))
	for i, l := range all {
		if l.Op == DiffEqual {
			continue
		}
		for j := max(0, i-diffContext); j <= min(len(all)-1, i+diffContext); j++ {
			keep[j] = true
		}
	}
	var out []DiffLine
	skipped := 0
	flush := func() {
		if skipped > 0 {
			out = append(out, DiffLine{Op: DiffElided, Text: plural(skipped, "line") + " unchanged"})
			skipped = 0
		}
	}
	for i, l := range all {
		if !keep[i] {
			skipped++
			continue
		}
		flush()
		out = append(out, l)
	}
	flush()
	if len(out) > maxLines {
		rest := 0
		for _, l := range out[maxLines-1:] {
			if l.Op != DiffElided {
				rest++
			}
		}
		out = append(out[:maxLines-1:maxLines-1], DiffLine{Op: DiffElided, Text: fmt.Sprintf("%s more", plural(rest, "line"))})
	}
	return out
}
