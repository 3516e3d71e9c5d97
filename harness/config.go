package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/dbtwin/dbtwin/compare"
	"github.com/dbtwin/dbtwin/migrate"
	"gopkg.in/yaml.v3"
)

// Config is a dbtwin.yaml: which tenants to verify, how to clone and mask
// them, which migrations make the candidate, which workload to replay and
// how to compare and report. Load it with LoadConfig.
//
// Values may use ${VAR} to read environment variables (connection strings
// and secrets come from the CI's secret store, never the file).
type Config struct {
	// Version is the config format version; 1.
	Version int `yaml:"version"`
	// Sandbox says where clones live.
	Sandbox SandboxConfig `yaml:"sandbox"`
	// Tenants are the customer databases to verify, in order.
	Tenants []TenantConfig `yaml:"tenants"`
	// Masking, when Rules is set, masks every clone (key in DBTWIN_MASK_KEY).
	Masking MaskingConfig `yaml:"masking"`
	// Migrations make the candidate from the baseline.
	Migrations MigrationsConfig `yaml:"migrations"`
	// Workload is what gets replayed on baseline, candidate and control.
	Workload WorkloadConfig `yaml:"workload"`
	// Replay tunes the replay engine.
	Replay ReplayConfig `yaml:"replay"`
	// Compare tunes the comparison (see compare.Config).
	Compare compare.Config `yaml:"compare"`
	// Report says where reports go and in which formats.
	Report ReportConfig `yaml:"report"`

	// path is the file it came from, for messages; base resolves relative
	// paths in it.
	path, base string
	root       *yaml.Node
}

// SandboxConfig chooses the sandbox backend by name.
type SandboxConfig struct {
	// Backend is "local" (embedded clusters, the default) or "server" (an
	// existing PostgreSQL given by DSN).
	Backend string `yaml:"backend"`
	// DSN is the server for the "server" backend.
	DSN string `yaml:"dsn"`
	// PGBinDir overrides where PostgreSQL programs are found.
	PGBinDir string `yaml:"pg_bindir"`
}

// TenantConfig is one customer database: a live Source or a Dump file.
type TenantConfig struct {
	Name   string `yaml:"name"`
	Source string `yaml:"source"`
	Dump   string `yaml:"dump"`
}

// MaskingConfig points at the masking rules.
type MaskingConfig struct {
	// Rules is the masking rules file; empty: no masking.
	Rules string `yaml:"rules"`
}

// MigrationsConfig names the migrations: a directory, or a command.
type MigrationsConfig struct {
	// Dir holds the migrations; Format is detected unless given.
	Dir    string `yaml:"dir"`
	Format string `yaml:"format"`
	// Command runs an external migrator instead ({{dsn}} and {{url}}
	// placeholders; DBTWIN_DSN and DATABASE_URL are set too).
	Command []string `yaml:"command"`
}

// WorkloadConfig names the captured workload.
type WorkloadConfig struct {
	// File is a dbtwin JSONL workload or a PostgreSQL log.
	File string `yaml:"file"`
	// Format is auto, stderr, csvlog, jsonlog or jsonl.
	Format string `yaml:"format"`
	// LogPrefix is the log_line_prefix of a stderr log (default: detected).
	LogPrefix string `yaml:"log_prefix"`
}

// ReplayConfig tunes the replay.
type ReplayConfig struct {
	// StatementTimeout cancels a runaway statement (default 30s).
	StatementTimeout time.Duration `yaml:"statement_timeout"`
	// SampleRows is how many rows of each result are kept (default 20).
	SampleRows int `yaml:"sample_rows"`
}

// ReportConfig says where reports go.
type ReportConfig struct {
	// Dir is the report directory (default dbtwin-report).
	Dir string `yaml:"dir"`
	// Formats are the renderers: terminal, markdown, junit, json, html.
	Formats []string `yaml:"formats"`
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// LoadConfig reads and validates a dbtwin.yaml. Errors name the file, the
// line and the key ("dbtwin.yaml:12: tenants[1].source: …").
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig is LoadConfig on bytes already read; name is used in
// messages and relative paths resolve against its directory.
func ParseConfig(name string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	// ${VAR} is expanded in values only, never in comments or keys.
	if err := expandEnv(name, &root); err != nil {
		return nil, err
	}
	// Sections left out keep their defaults: the decoder only overwrites
	// the keys the file has.
	cfg := &Config{path: name, base: filepath.Dir(name), root: &root, Compare: compare.DefaultConfig()}
	if len(root.Content) > 0 {
		if err := decodeStrict(&root, cfg); err != nil {
			return nil, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// expandEnv replaces ${VAR} in every scalar value under n with the
// environment variable's value; an unset variable is an error at its line.
func expandEnv(name string, n *yaml.Node) error {
	var errs []error
	var walk func(n *yaml.Node, isKey bool)
	walk = func(n *yaml.Node, isKey bool) {
		if n.Kind == yaml.ScalarNode && !isKey {
			n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
				v, ok := os.LookupEnv(m[2 : len(m)-1])
				if !ok {
					errs = append(errs, fmt.Errorf("%s:%d: environment variable %s is not set", name, n.Line, m[2:len(m)-1]))
				}
				return v
			})
		}
		for i, c := range n.Content {
			walk(c, n.Kind == yaml.MappingNode && i%2 == 0)
		}
	}
	walk(n, false)
	return errors.Join(errs...)
}

// decodeStrict decodes the document into cfg, refusing keys that no field
// takes, at their own line (yaml.Node.Decode has no KnownFields switch).
func decodeStrict(root *yaml.Node, cfg *Config) error {
	if err := checkKnown(root, reflect.TypeOf(cfg).Elem()); err != nil {
		return err
	}
	return root.Decode(cfg)
}

// checkKnown reports the first mapping key under n that type t (a struct,
// through pointers, slices and maps) has no yaml field for.
func checkKnown(n *yaml.Node, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.DocumentNode || n.Kind == yaml.AliasNode {
		for _, c := range n.Content {
			if err := checkKnown(c, t); err != nil {
				return err
			}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		if n.Kind == yaml.SequenceNode {
			for _, c := range n.Content {
				if err := checkKnown(c, t.Elem()); err != nil {
					return err
				}
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 1; i < len(n.Content); i += 2 {
				if err := checkKnown(n.Content[i], t.Elem()); err != nil {
					return err
				}
			}
		}
	case reflect.Struct:
		if n.Kind != yaml.MappingNode || t == reflect.TypeOf(time.Time{}) {
			return nil
		}
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if tag == "-" || !f.IsExported() {
				continue
			}
			if tag == "" {
				tag = strings.ToLower(f.Name)
			}
			fields[tag] = f.Type
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := fields[k.Value]
			if !ok {
				return fmt.Errorf("line %d: unknown key %q", k.Line, k.Value)
			}
			if err := checkKnown(n.Content[i+1], ft); err != nil {
				return err
			}
		}
	}
	return nil
}

// errAt formats a config error at the line of key (a path like
// "tenants", 1, "source").
func (c *Config) errAt(msg string, path ...any) error {
	line := lineOf(c.root, path...)
	var key strings.Builder
	for i, p := range path {
		switch p := p.(type) {
		case int:
			fmt.Fprintf(&key, "[%d]", p)
		default:
			if i > 0 {
				key.WriteByte('.')
			}
			fmt.Fprint(&key, p)
		}
	}
	if line > 0 {
		return fmt.Errorf("%s:%d: %s: %s", c.path, line, key.String(), msg)
	}
	return fmt.Errorf("%s: %s: %s", c.path, key.String(), msg)
}

// lineOf finds the line of the node at path (map keys and sequence
// indexes), or of the deepest ancestor that exists.
func lineOf(n *yaml.Node, path ...any) int {
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		switch p := p.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return line
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					line, n, found = n.Content[i].Line, n.Content[i+1], true
					break
				}
			}
			if !found {
				return line
			}
		case int:
			if n.Kind != yaml.SequenceNode || p >= len(n.Content) {
				return line
			}
			n = n.Content[p]
			line = n.Line
		}
	}
	return line
}

var tenantName = regexp.MustCompile(`^[a-z0-9][a-z0-9_]{0,40}$`)

func (c *Config) validate() error {
	var errs []error
	if c.Version != 1 {
		errs = append(errs, c.errAt(fmt.Sprintf("want 1, got %d", c.Version), "version"))
	}
	switch c.Sandbox.Backend {
	case "", "local":
		c.Sandbox.Backend = "local"
	case "server":
		if c.Sandbox.DSN == "" {
			errs = append(errs, c.errAt("the server backend needs dsn", "sandbox", "backend"))
		}
	default:
		errs = append(errs, c.errAt(fmt.Sprintf("unknown backend %q: want local or server", c.Sandbox.Backend), "sandbox", "backend"))
	}
	if len(c.Tenants) == 0 {
		errs = append(errs, c.errAt("list at least one tenant (name and source or dump)", "tenants"))
	}
	seen := map[string]bool{}
	for i, t := range c.Tenants {
		switch {
		case !tenantName.MatchString(t.Name):
			errs = append(errs, c.errAt(fmt.Sprintf("name %q: use 1-41 lowercase letters, digits or _", t.Name), "tenants", i, "name"))
		case seen[t.Name]:
			errs = append(errs, c.errAt(fmt.Sprintf("tenant %q is listed twice", t.Name), "tenants", i, "name"))
		}
		seen[t.Name] = true
		if (t.Source == "") == (t.Dump == "") {
			errs = append(errs, c.errAt("give exactly one of source (a connection string) or dump (a pg_dump file)", "tenants", i))
		}
		if t.Dump != "" {
			c.Tenants[i].Dump = c.resolve(t.Dump)
		}
	}
	if c.Masking.Rules != "" {
		c.Masking.Rules = c.resolve(c.Masking.Rules)
		if _, err := os.Stat(c.Masking.Rules); err != nil {
			errs = append(errs, c.errAt(err.Error(), "masking", "rules"))
		}
	}
	switch {
	case c.Migrations.Dir != "" && len(c.Migrations.Command) > 0:
		errs = append(errs, c.errAt("give dir or command, not both", "migrations"))
	case c.Migrations.Dir == "" && len(c.Migrations.Command) == 0:
		errs = append(errs, c.errAt("give dir (a migration directory) or command (an external migrator)", "migrations"))
	case c.Migrations.Dir != "":
		c.Migrations.Dir = c.resolve(c.Migrations.Dir)
		if fi, err := os.Stat(c.Migrations.Dir); err != nil || !fi.IsDir() {
			errs = append(errs, c.errAt(fmt.Sprintf("%s is not a directory", c.Migrations.Dir), "migrations", "dir"))
		} else if sql, _ := filepath.Glob(filepath.Join(c.Migrations.Dir, "*.sql")); len(sql) == 0 {
			if f, ferr := migrate.ParseFormat(c.Migrations.Format); ferr == nil && f == migrate.FormatAuto {
				// No migration at all is a legitimate release with no schema
				// change (the run then shows what differs without one: nothing
				// but noise). There is no format to detect: read it as plain
				// .sql files, of which there are none.
				c.Migrations.Format = string(migrate.FormatPlain)
			}
		}
	}
	if c.Workload.File == "" {
		errs = append(errs, c.errAt("name the captured workload to replay (a dbtwin JSONL file or a PostgreSQL log)", "workload", "file"))
	} else {
		c.Workload.File = c.resolve(c.Workload.File)
		if _, err := os.Stat(c.Workload.File); err != nil {
			errs = append(errs, c.errAt(err.Error(), "workload", "file"))
		}
	}
	if c.Replay.StatementTimeout == 0 {
		c.Replay.StatementTimeout = 30 * time.Second
	}
	if c.Replay.SampleRows == 0 {
		c.Replay.SampleRows = 20
	}
	if c.Report.Dir == "" {
		c.Report.Dir = "dbtwin-report"
	}
	for i, f := range c.Report.Formats {
		switch f {
		case "terminal", "markdown", "junit", "json", "html":
		default:
			errs = append(errs, c.errAt(fmt.Sprintf("unknown format %q: want terminal, markdown, junit, json or html", f), "report", "formats", i))
		}
	}
	return errors.Join(errs...)
}

func (c *Config) resolve(p string) string {
	if filepath.IsAbs(p) || c.base == "" {
		return p
	}
	return filepath.Join(c.base, p)
}
