package reports

import (
	"bytes"
	"encoding/xml"
	"reflect"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://app:s3cret@db:5432/acme", "postgres://app:xxxxx@db:5432/acme"},
		{"atlas migrate apply --url postgresql://app:s3cret@db/acme?sslmode=disable --dir x", "atlas migrate apply --url postgresql://app:xxxxx@db/acme?sslmode=disable --dir x"},
		{"host=db user=app password=s3cret dbname=acme", "host=db user=app password=xxxxx dbname=acme"},
		{"PGPASSWORD=s3cret liquibase update", "PGPASSWORD=xxxxx liquibase update"},
		{`password = 'it\'s s3cret' host=h`, "password = xxxxx host=h"},
		{"postgres://h/db?password=s3cret", "postgres://h/db?password=xxxxx"},
		{"mysql://root:s3cret@h/x and token=s3cret", "mysql://root:xxxxx@h/x and token=xxxxx"},
		{"SELECT id FROM users WHERE id = $1", "SELECT id FROM users WHERE id = $1"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Contains(Redact(tt.in), "s3cret") {
			t.Errorf("Redact(%q) leaks the password", tt.in)
		}
	}
}

// poison appends text to every plain string reachable from v (map keys
// included), leaving typed strings (classes, severities, lock modes) alone.
func poison(v reflect.Value, text string) {
	switch v.Kind() {
	case reflect.String:
		if v.Type() == reflect.TypeOf("") && v.CanSet() {
			v.SetString(v.String() + text)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			poison(v.Elem(), text)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				poison(v.Field(i), text)
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			poison(v.Index(i), text)
		}
	case reflect.Map:
		out := reflect.MakeMap(v.Type())
		for it := v.MapRange(); it.Next(); {
			k := reflect.New(v.Type().Key()).Elem()
			k.Set(it.Key())
			poison(k, text)
			out.SetMapIndex(k, it.Value())
		}
		v.Set(out)
	}
}

func TestNoSecretInAnyOutput(t *testing.T) {
	rep := fixture()
	poison(reflect.ValueOf(rep).Elem(), " see postgres://admin:hunter2@prod-db:5432/app and password=hunter2 PGPASSWORD=hunter2")
	for _, name := range Names() {
		r, _ := New(name)
		var buf bytes.Buffer
		if err := r.Render(&buf, rep); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out := buf.String()
		if strings.Contains(out, "hunter2") {
			i := strings.Index(out, "hunter2")
			t.Errorf("%s leaks a password: …%s…", name, out[max(0, i-80):min(len(out), i+20)])
		}
		if !strings.Contains(out, "xxxxx") {
			t.Errorf("%s: no redacted value at all", name)
		}
	}
}

func TestEscaping(t *testing.T) {
	const evil = `<script>alert(1)</script> ]]> & "q" | ` + "`x` **b** [l](http://e) \n# h"
	rep := fixture()
	poison(reflect.ValueOf(rep).Elem(), evil)
	outputs := map[string]string{}
	for _, name := range Names() {
		r, _ := New(name)
		var buf bytes.Buffer
		if err := r.Render(&buf, rep); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		outputs[name] = buf.String()
	}
	for _, name := range []string{"html", "junit", "json"} {
		if strings.Contains(outputs[name], "<script>") {
			t.Errorf("%s holds a raw <script> tag", name)
		}
	}
	if err := xml.Unmarshal([]byte(outputs["junit"]), new(struct{})); err != nil {
		t.Errorf("junit is not well-formed XML: %v", err)
	}
	// Markdown: outside code fences, no raw tag and no table row broken by
	// a pipe or a newline in a value; inside, no line split by a value.
	inFence := ""
	for _, line := range strings.Split(outputs["markdown"], "\n") {
		if strings.HasPrefix(line, "```") {
			switch {
			case inFence == "":
				inFence = strings.TrimRight(line, "abcdefghijklmnopqrstuvwxyz")
			case line == inFence:
				inFence = ""
			}
			continue
		}
		if inFence != "" {
			if !strings.HasPrefix(line, "+") && !strings.HasPrefix(line, "-") && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "@@") && !strings.HasPrefix(line, "SELECT") && !strings.HasPrefix(line, "UPDATE") && !strings.HasPrefix(line, "INSERT") && !strings.HasPrefix(line, "COPY") && !strings.HasPrefix(line, "COMMIT") {
				t.Errorf("markdown code line split by a newline in a value: %q", line)
			}
			continue
		}
		if strings.Contains(line, "<script>") {
			t.Errorf("markdown holds a raw <script> tag outside code: %q", line)
		}
		if strings.HasPrefix(line, "| ") && !strings.HasSuffix(line, " |") {
			t.Errorf("markdown table row broken: %q", line)
		}
		if strings.HasPrefix(line, "# h") {
			t.Errorf("markdown heading injected: %q", line)
		}
	}
	if strings.Count(outputs["html"], "<svg") != strings.Count(outputs["html"], "</svg>") || !strings.Contains(outputs["html"], "&lt;script&gt;") {
		t.Error("html: SVG or escaping broken")
	}
}
