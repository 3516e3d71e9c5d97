package pgdsn

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://alice:s3cret@db.example.com:5432/app", "postgres://alice:xxxxx@db.example.com:5432/app"},
		{"postgres://alice@db/app?password=s3cret&sslmode=require", "postgres://alice@db/app?password=xxxxx&sslmode=require"},
		{"host=db user=alice password=s3cret dbname=app", "host=db user=alice password=xxxxx dbname=app"},
		{"host=db password = 'with space' dbname=app", "host=db password = xxxxx dbname=app"},
		{"host=/tmp/sock dbname=app", "host=/tmp/sock dbname=app"},
	}
	for _, tt := range tests {
		got := Redact(tt.in)
		if got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Contains(got, "s3cret") || strings.Contains(got, "with space") {
			t.Errorf("Redact(%q) leaked the password: %q", tt.in, got)
		}
	}
}

func TestWithDatabase(t *testing.T) {
	tests := []struct{ in, db, wantDB string }{
		{"postgres://u:p@h:5432/app?sslmode=disable", "postgres", "postgres"},
		{"host=/tmp user=u dbname=app", "tenant_x", "tenant_x"},
		{"postgres://u@h/?dbname=app", "other", "other"},
		{"host=/tmp user=u dbname=app", "it's", "it's"},
	}
	for _, tt := range tests {
		got, err := WithDatabase(tt.in, tt.db)
		if err != nil {
			t.Fatalf("WithDatabase(%q): %v", tt.in, err)
		}
		db, err := Database(got)
		if err != nil {
			t.Fatalf("Database(%q): %v", got, err)
		}
		if db != tt.wantDB {
			t.Errorf("WithDatabase(%q, %q) = %q, which names %q", tt.in, tt.db, got, db)
		}
	}
}
