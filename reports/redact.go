package reports

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"

	"github.com/dbtwin/dbtwin/compare"
	"github.com/dbtwin/dbtwin/internal/pgdsn"
)

// dsnURL finds connection URLs inside any text (a command line, an error
// message); otherURL finds credentials in URLs of other schemes.
var (
	dsnURL   = regexp.MustCompile(`(?i)postgres(?:ql)?://[^\s'"<>]+`)
	otherURL = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s'"<>]+:)([^@\s'"<>]+)(@)`)
	// kvSecret catches keyword/value secrets pgdsn.Redact does not
	// (PGPASSWORD=…, passwd=…, sslpassword=… are covered by "password").
	kvSecret = regexp.MustCompile(`(?i)\b(passwd|pwd|secret|token|mask_key)(\s*[=:]\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s&;,]+)`)
)

// Redact returns s with every password it can recognise replaced by
// "xxxxx": inside postgres:// URLs anywhere in the text (pgdsn.Redact),
// user:password@ in URLs of any scheme, and password=… (also PGPASSWORD=,
// sslpassword=) or passwd/pwd/secret/token/mask_key=… pairs.
func Redact(s string) string {
	s = dsnURL.ReplaceAllStringFunc(s, pgdsn.Redact)
	s = otherURL.ReplaceAllString(s, "${1}xxxxx${3}")
	s = pgdsn.Redact(s) // keyword/value password=…; s no longer starts with a URL password
	return kvSecret.ReplaceAllString(s, "${1}${2}xxxxx")
}

// Sanitize returns a deep copy of r with Redact applied to every string
// in it (map keys included). Fields that never serialize (such as
// compare.LatencyRow.ExplainSQL, the raw statement text) are dropped.
// Every renderer renders the sanitized copy.
func Sanitize(r *compare.Report) (*compare.Report, error) {
	if r == nil {
		return nil, fmt.Errorf("sanitize report: nil report")
	}
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("sanitize report: %w", err)
	}
	var c compare.Report
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("sanitize report: %w", err)
	}
	redactValue(reflect.ValueOf(&c).Elem())
	return &c, nil
}

// redactValue applies Redact to every settable string reachable from v.
func redactValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		if v.CanSet() {
			v.SetString(Redact(v.String()))
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			redactValue(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				redactValue(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			redactValue(v.Index(i))
		}
	case reflect.Map:
		if v.IsNil() {
			return
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		iter := v.MapRange()
		for iter.Next() {
			k := reflect.New(v.Type().Key()).Elem()
			k.Set(iter.Key())
			redactValue(k)
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(iter.Value())
			redactValue(e)
			out.SetMapIndex(k, e)
		}
		v.Set(out)
	}
}
