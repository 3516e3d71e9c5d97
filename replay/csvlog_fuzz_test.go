package replay

import "testing"

func FuzzCSVLogReader(f *testing.F) {
	addGoldenSeeds(f, ".csv", func(b []byte) { f.Add(b) })
	f.Add([]byte(`2024-01-02 03:04:05.000 UTC,"u","d",1,"[local]",65940a10.1,1,"idle",2024-01-02 03:04:00 UTC,3/1,0,ERROR,42601,"syntax error",,,,,,"SELEC ""1""
x",1,,"psql","client backend",,0` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRead(t, FormatCSVLog, "", data)
	})
}
