package migrate

import (
	"fmt"
	"strings"
)

// Format names the tool whose conventions a migration directory follows.
type Format string

// The formats [Discover] understands.
const (
	// FormatAuto asks Discover to detect the format from the directory.
	FormatAuto Format = ""
	// FormatGolangMigrate is golang-migrate: N_name.up.sql / N_name.down.sql.
	FormatGolangMigrate Format = "golang-migrate"
	// FormatGoose is pressly/goose: N_name.sql with -- +goose Up/Down.
	FormatGoose Format = "goose"
	// FormatFlyway is Flyway: V1__name.sql, V1.1__name.sql, R__name.sql.
	FormatFlyway Format = "flyway"
	// FormatDbmate is dbmate: N_name.sql with -- migrate:up / -- migrate:down.
	FormatDbmate Format = "dbmate"
	// FormatAtlas is an Atlas versioned directory (it has an atlas.sum).
	FormatAtlas Format = "atlas"
	// FormatPlain is plain .sql files applied in name order.
	FormatPlain Format = "plain"
)

// detectionOrder lists every concrete format, in the order detection
// reports them (an immutable table).
var detectionOrder = [...]Format{FormatAtlas, FormatGolangMigrate, FormatFlyway, FormatGoose, FormatDbmate, FormatPlain}

// ParseFormat turns a user-supplied name ("auto", "goose", "migrate",
// "golang-migrate", "flyway", "dbmate", "atlas", "plain"/"sql") into a
// Format.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return FormatAuto, nil
	case "golang-migrate", "migrate", "golang_migrate":
		return FormatGolangMigrate, nil
	case "goose":
		return FormatGoose, nil
	case "flyway":
		return FormatFlyway, nil
	case "dbmate":
		return FormatDbmate, nil
	case "atlas":
		return FormatAtlas, nil
	case "plain", "sql":
		return FormatPlain, nil
	}
	return "", fmt.Errorf("parse migration format %q: want one of auto, golang-migrate, goose, flyway, dbmate, atlas, plain", s)
}

// Statement is one SQL statement of a migration, as it will be sent to the
// server, with the 1-based line of the file it starts on (leading comments
// and blank lines skipped).
type Statement struct {
	SQL  string `json:"sql"`
	Line int    `json:"line"`
}

// Migration is one migration of a directory: one file (two for
// golang-migrate's up/down pair) with its version and statements.
type Migration struct {
	// Version orders the migration and matches the tool's history table:
	// "3" (goose, golang-migrate), "1.1" (Flyway), "20240101120000"
	// (dbmate, Atlas), or the file name without ".sql" for plain files
	// without a numeric prefix. Empty for Flyway repeatable migrations.
	Version string `json:"version"`
	// Name is the descriptive part of the file name ("add_users_phone";
	// Flyway's description with spaces).
	Name string `json:"name"`
	// File is the path of the file holding the up SQL, as Discover was
	// given it joined with the file name. Findings and errors cite it.
	File string `json:"file"`
	// DownFile is golang-migrate's separate down file, if any.
	DownFile string `json:"down_file,omitempty"`
	// Format is the tool the migration belongs to.
	Format Format `json:"format"`
	// Repeatable marks a Flyway R__ migration.
	Repeatable bool `json:"repeatable,omitempty"`
	// NoTransaction says the runner applies the statements one by one,
	// each committing on its own, instead of in one transaction.
	NoTransaction bool `json:"no_transaction,omitempty"`
	// Up is what applying the migration runs; Down reverts it (not run by
	// dbtwin; kept for lint and completeness).
	Up   []Statement `json:"up"`
	Down []Statement `json:"down,omitempty"`
	// Source is the text of File; lint reads its suppression comments.
	Source string `json:"-"`

	// checksum is Flyway's CRC32 of the file, compared with
	// flyway_schema_history to decide whether a repeatable is pending.
	checksum int32
}

// Set is a discovered migration directory.
type Set struct {
	// Dir is the directory as given to Discover.
	Dir string `json:"dir"`
	// Format is the detected or requested format.
	Format Format `json:"format"`
	// Migrations are in the order the tool applies them.
	Migrations []Migration `json:"migrations"`
}

// Index returns the position of the migration with the given version, or
// -1.
func (s *Set) Index(version string) int {
	for i, m := range s.Migrations {
		if m.Version == version && !m.Repeatable {
			return i
		}
	}
	return -1
}

// label is how messages name a migration: its file, else its version.
func (m *Migration) label() string {
	if m.File != "" {
		return m.File
	}
	return m.Version
}
