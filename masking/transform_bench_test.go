package masking

import (
	"strconv"
	"testing"
)

// BenchmarkTransforms measures each transform (values/s and allocations per
// value). Run: go test -run '^$' -bench Transforms -benchmem ./masking/
func BenchmarkTransforms(b *testing.B) {
	benches := []struct {
		name   string
		spec   Spec
		target Target
		inputs []string
	}{
		{"int/int8", Spec{Transform: "int"}, Target{Type: "int8"}, nil},
		{"int/int4", Spec{Transform: "int"}, Target{Type: "int4"}, nil},
		{"uuid", Spec{Transform: "uuid"}, Target{Type: "uuid"}, []string{"6ba7b810-9dad-41d1-80b4-00c04fd430c8", "1b4e28ba-2fa1-41d2-883f-0016d3cca427"}},
		{"hash", Spec{Transform: "hash", Options: Options{Length: 16}}, Target{}, []string{"tok_1a2b3c4d5e6f", "tok_ffeeddccbbaa"}},
		{"fpe/sku", Spec{Transform: "fpe"}, Target{}, []string{"AB-123456", "ZX-998877"}},
		{"phone", Spec{Transform: "phone"}, Target{}, []string{"+1 (415) 555-0123", "020 7946 0018"}},
		{"email/unique", Spec{Transform: "email"}, Target{Unique: true}, []string{"john.doe@gmail.com", "mary.major@corp.example.org"}},
		{"email/fake", Spec{Transform: "email"}, Target{}, []string{"john.doe@gmail.com", "mary.major@corp.example.org"}},
		{"full_name", Spec{Transform: "full_name"}, Target{}, []string{"John Smith", "Mary Major"}},
		{"card", Spec{Transform: "card"}, Target{}, []string{"4111 1111 1111 1111", "5500000000000004"}},
		{"iban", Spec{Transform: "iban"}, Target{}, []string{"GB82 WEST 1234 5698 7654 32", "DE89370400440532013000"}},
		{"ip/v4", Spec{Transform: "ip"}, Target{Type: "inet"}, []string{"192.168.1.20", "10.20.30.40"}},
		{"date_shift", Spec{Transform: "date_shift"}, Target{Type: "timestamptz"}, []string{"2024-01-02 03:04:05+00", "1984-03-07 00:00:00+00"}},
		{"noise", Spec{Transform: "noise"}, Target{Type: "numeric"}, []string{"123.45", "99.99"}},
		{"redact", Spec{Transform: "redact", Options: Options{KeepFirst: 2, KeepLast: 2}}, Target{}, []string{"confidential", "secret value"}},
		{"scrub/ticket", Spec{Transform: "scrub"}, Target{}, []string{"Hi, I can't log in with jane.roe@gmail.com since yesterday. Please call me back on +1 (415) 555-0123, I'm available after 5pm. Thanks, Jane"}},
		{"jsonb/audit", Spec{Transform: "jsonb", Options: Options{Paths: []PathRule{
			{Path: "$.actor.email", Spec: Spec{Transform: "email"}},
			{Path: "$.actor.name", Spec: Spec{Transform: "full_name"}},
			{Path: "$.actor.ip", Spec: Spec{Transform: "ip"}},
		}}}, Target{Type: "jsonb"}, []string{`{"actor": {"id": 42, "ip": "10.1.2.3", "name": "John Doe", "email": "john@x.com"}, "action": "user.login", "request": {"path": "/login"}}`}},
	}
	kr := testKeyring(b, testKey)
	for _, bc := range benches {
		b.Run(bc.name, func(b *testing.B) {
			tr := mustTransform(b, kr, bc.spec, bc.target)
			inputs := make([][]byte, 1024)
			for i := range inputs {
				if bc.inputs == nil {
					inputs[i] = strconv.AppendInt(nil, int64(i*7919+1), 10)
				} else {
					inputs[i] = []byte(bc.inputs[i%len(bc.inputs)])
				}
			}
			dst := make([]byte, 0, 4096)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				var err error
				dst, err = tr.Append(dst[:0], inputs[i&1023])
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "values/s")
		})
	}
}
