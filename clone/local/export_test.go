package local

// WriteRecordForTest lets tests rewrite a record (to simulate an owner that
// is gone).
func WriteRecordForTest(stateDir string, r Record) error { return writeRecord(stateDir, r) }
