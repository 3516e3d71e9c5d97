package masking

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// propose returns the rule Scan proposes for a column, in rules syntax.
func propose(cr *ColumnReport, c *Column) string {
	if c.Generated || cr.Kind == "" || cr.Confidence == Low || cr.Confidence == None {
		return "keep"
	}
	if isIntType(c.Type) && cr.Kind != KindIP {
		return "keep" // integer keys and counts: not what the finding suggests
	}
	switch cr.Kind {
	case KindEmail:
		return "email"
	case KindPhone:
		return "phone"
	case KindCard:
		return "card"
	case KindIBAN:
		return "iban"
	case KindNationalID:
		return "national_id"
	case KindIP:
		if c.Type == "inet" || c.Type == "cidr" || isTextual(c.Type) {
			return "ip"
		}
	case KindBirthDate:
		return "{mask: date_shift, window_days: 180}"
	case KindPersonName:
		n := strings.ToLower(c.Name)
		switch {
		case strings.Contains(n, "first") || strings.Contains(n, "given"):
			return "first_name"
		case strings.Contains(n, "last") || strings.Contains(n, "family") || strings.Contains(n, "sur"):
			return "last_name"
		}
		return "full_name"
	case KindAddress:
		return "street_address"
	case KindCity:
		return "city"
	case KindPostcode:
		return "postcode"
	case KindSecret:
		return "hash"
	case KindFreeText:
		return "scrub"
	case KindJSON:
		if len(cr.JSONKeys) == 0 {
			return "{mask: jsonb, scrub: true}"
		}
		keys := make([]string, 0, len(cr.JSONKeys))
		for k := range cr.JSONKeys {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			if t := transformFor(cr.JSONKeys[k]); t != "" {
				parts = append(parts, strconv.Quote(k)+": "+t)
			}
		}
		if len(parts) == 0 {
			return "{mask: jsonb, scrub: true}"
		}
		return "{mask: jsonb, scrub: true, paths: {" + strings.Join(parts, ", ") + "}}"
	}
	return "keep"
}

// transformFor is the transform for a kind found as a JSON value.
func transformFor(k PIIKind) string {
	switch k {
	case KindEmail, KindPhone, KindCard, KindIBAN, KindIP:
		return string(k)
	case KindNationalID:
		return "national_id"
	case KindPersonName:
		return "full_name"
	case KindAddress:
		return "street_address"
	case KindCity:
		return "city"
	case KindPostcode:
		return "postcode"
	case KindSecret:
		return "hash"
	case KindBirthDate:
		return "{mask: date_shift, window_days: 180}"
	}
	return ""
}

var plainKey = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

func yamlKey(s string) string {
	if plainKey.MatchString(s) && s != "null" && s != "true" && s != "false" && s != "keep" {
		return s
	}
	return strconv.Quote(s)
}

// WriteRules writes the report as a proposed rules file: every column with
// a decision and, as a comment, the confidence and the counts behind it.
// Sampled values never appear.
func (r *Report) WriteRules(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Masking rules proposed by dbtwin mask scan for database %q.\n", r.Database)
	b.WriteString("# Review every line: the scan saw samples, not whole tables. A column that\n")
	b.WriteString("# holds personal data and stays unmasked needs a reason: {keep: \"why\"}.\n")
	b.WriteString("# Columns of the same entity should share a domain: {mask: email, domain: customer_email}.\n")
	b.WriteString("version: 1\ntables:\n")
	for _, t := range r.Tables {
		name := strings.TrimPrefix(t.Table, "public.")
		fmt.Fprintf(&b, "  %s:  # %d rows sampled\n", yamlKey(name), t.Sampled)
		for _, c := range t.Columns {
			fmt.Fprintf(&b, "    %s: %s", yamlKey(c.Column), c.Proposal)
			if note := c.note(); note != "" {
				b.WriteString("  # " + note)
			}
			b.WriteByte('\n')
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// note summarises a verdict for a comment or a table cell.
func (c *ColumnReport) note() string {
	if c.Generated {
		return "generated column"
	}
	if c.Kind == "" {
		return ""
	}
	s := fmt.Sprintf("%s %s", c.Confidence, c.Kind)
	if c.NonNull > 0 {
		s += fmt.Sprintf(", %d/%d sampled values match", c.Matches, c.NonNull)
	}
	if len(c.Reasons) > 0 {
		s += "; " + strings.Join(c.Reasons, "; ")
	}
	return strings.ReplaceAll(s, "\n", " ")
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteMarkdown writes the report as a Markdown table of the columns with
// findings, then the count of columns without.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# PII scan of `%s`\n\n", r.Database)
	b.WriteString("| table | column | type | kind | confidence | matches | proposal |\n|---|---|---|---|---|---|---|\n")
	clean := 0
	for _, t := range r.Tables {
		for _, c := range t.Columns {
			if c.Kind == "" {
				clean++
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d/%d | `%s` |\n", t.Table, c.Column, c.Type, c.Kind, c.Confidence, c.Matches, c.NonNull, strings.ReplaceAll(c.Proposal, "|", `\|`))
		}
	}
	fmt.Fprintf(&b, "\n%d other columns showed no personal data in the samples.\n", clean)
	_, err := io.WriteString(w, b.String())
	return err
}

// CheckReasons fails when a column the scan found to hold personal data
// with high confidence is kept without a written reason: a run refuses to
// start then. It lists every such column.
func (p *Plan) CheckReasons(r *Report) error {
	var bad []string
	for _, t := range r.Tables {
		for _, c := range t.Columns {
			if c.Confidence != High {
				continue
			}
			tb := p.cat.Table(t.Table)
			if tb == nil {
				continue
			}
			d := p.dec[p.cat.Root(tb).QualifiedName()][c.Column]
			if d != nil && d.Action == Keep && d.Reason == "" {
				bad = append(bad, fmt.Sprintf("%s.%s (%s, %s)", t.Table, c.Column, c.Kind, d.Source))
			}
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %d column(s) hold personal data (high confidence) but are kept without a reason; mask them or write keep: \"why it is safe\":\n  %s",
		p.rules.File, len(bad), strings.Join(bad, "\n  "))
}
