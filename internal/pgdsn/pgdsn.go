// Package pgdsn redacts and reshapes PostgreSQL connection strings so that no
// password ever reaches a log line, an error message or a report.
package pgdsn

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

var kvPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// Redact returns dsn with any password replaced by "xxxxx". It accepts both
// URL ("postgres://u:p@h/db") and keyword/value ("host=h password=p") forms and
// never fails: a string it cannot parse is returned with anything that looks
// like a password masked.
func Redact(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "(unparseable connection URL)"
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return kvPassword.ReplaceAllString(dsn, "${1}xxxxx")
}

// Describe returns a short, password-free description of where dsn points:
// "user@host:port/db" (or "user@/socket/dir/db" for a Unix socket).
func Describe(dsn string) string {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return Redact(dsn)
	}
	host := cfg.Host
	if !strings.HasPrefix(host, "/") {
		host = fmt.Sprintf("%s:%d", host, cfg.Port)
	}
	return fmt.Sprintf("%s@%s/%s", cfg.User, host, cfg.Database)
}

// WithDatabase returns dsn pointing at database db instead, keeping every
// other setting. It is how dbtwin reaches the maintenance database ("postgres")
// of the server a target DSN names.
func WithDatabase(dsn, db string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse connection URL %s: %w", Redact(dsn), err)
		}
		q := u.Query()
		if q.Has("dbname") {
			q.Set("dbname", db)
			u.RawQuery = q.Encode()
		} else {
			u.Path = "/" + db
		}
		return u.String(), nil
	}
	if _, err := pgconn.ParseConfig(dsn); err != nil {
		return "", fmt.Errorf("parse connection string %s: %w", Redact(dsn), err)
	}
	return dsn + " dbname=" + Quote(db), nil
}

// Database returns the database a DSN names (after libpq defaults apply).
func Database(dsn string) (string, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "", fmt.Errorf("parse connection string %s: %w", Redact(dsn), err)
	}
	return cfg.Database, nil
}

// Quote quotes a value for a keyword/value connection string.
func Quote(v string) string {
	v = strings.ReplaceAll(v, `\`, `\\`)
	v = strings.ReplaceAll(v, `'`, `\'`)
	return "'" + v + "'"
}
