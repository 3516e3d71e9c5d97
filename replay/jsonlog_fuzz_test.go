package replay

import "testing"

func FuzzJSONLogReader(f *testing.F) {
	addGoldenSeeds(f, ".json", func(b []byte) { f.Add(b) })
	f.Add([]byte(`{"timestamp":"2024-01-02 03:04:05.000 UTC","pid":1,"session_id":"a.1","error_severity":"LOG","message":"duration: 1.000 ms  execute <unnamed>: SELECT $1","detail":"parameters: $1 = NULL"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRead(t, FormatJSONLog, "", data)
	})
}
