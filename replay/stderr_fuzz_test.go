package replay

import (
	"os"
	"strings"
	"testing"
)

func FuzzStderrReader(f *testing.F) {
	addGoldenSeeds(f, ".log", func(b []byte) {
		f.Add("", b)
	})
	if b, err := os.ReadFile("testdata/logs/stderr-custom-both.log"); err == nil {
		p, _ := os.ReadFile("testdata/logs/stderr-custom-both.log.prefix")
		f.Add(strings.TrimSpace(string(p)), b)
	}
	f.Add("%m [%p] %q%u@%d %e ", []byte("2024-01-02 03:04:05.000 UTC [1] u@d 00000 LOG:  execute S_1: SELECT $1\n2024-01-02 03:04:05.000 UTC [1] u@d 00000 DETAIL:  parameters: $1 = 'a''\n\tb'\n"))
	f.Add("%-5p%10a%%%c%s|", []byte("1    |LOG:  statement: x\n"))
	f.Fuzz(func(t *testing.T, prefix string, data []byte) {
		if len(prefix) > 200 {
			return
		}
		fuzzRead(t, FormatStderr, prefix, data)
	})
}
