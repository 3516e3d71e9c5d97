package compare

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/replay"
)

// shuffleWithin permutes rs so that no result lands window or more
// positions after a result with a higher Seq: blocks of window results are
// shuffled, and a few results are held back by up to window−1 positions.
func shuffleWithin(rng *rand.Rand, rs []*replay.Result, window int) []*replay.Result {
	out := append([]*replay.Result(nil), rs...)
	for start := 0; start < len(out); start += window {
		end := min(start+window, len(out))
		blk := out[start:end]
		rng.Shuffle(len(blk), func(i, j int) { blk[i], blk[j] = blk[j], blk[i] })
	}
	return out
}

func TestPairingOutOfOrderAndMissing(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	const n, window = 2000, 50
	var base, cand, ctrl []*replay.Result
	missCand, missBase := map[int64]bool{}, map[int64]bool{}
	for i := int64(1); i <= n; i++ {
		sess := withSession(fmt.Sprintf("s%d", i%7))
		r := func() *replay.Result { return mk(i, "SELECT id, v FROM t", rows("1", "a"), sess) }
		switch {
		case i%97 == 0 || (i > 1000 && i <= 1400): // a long stretch the candidate lacks
			missCand[i] = true
			base = append(base, r())
		case i%89 == 0:
			missBase[i] = true
			cand = append(cand, r())
		default:
			base, cand = append(base, r()), append(cand, r())
		}
		if i%5 != 0 {
			ctrl = append(ctrl, r())
		}
	}
	cfg := DefaultConfig()
	cfg.PairWindow = window
	var st Stats
	rep, err := Compare(context.Background(),
		results(t, shuffleWithin(rng, base, window)...),
		results(t, shuffleWithin(rng, cand, window)...),
		results(t, shuffleWithin(rng, ctrl, window)...), cfg, WithStats(&st))
	if err != nil {
		t.Fatal(err)
	}
	tr := rep.Tenants[0]
	counts := map[Class]int{}
	for _, c := range tr.Findings[0].Classes {
		counts[c.Class] = c.Count
	}
	if counts[MissingInCandidate] != len(missCand) || counts[MissingInBaseline] != len(missBase) || counts[Same] != n-len(missCand)-len(missBase) {
		t.Errorf("classes = %v, want %d missing in candidate, %d in baseline, the rest same", counts, len(missCand), len(missBase))
	}
	if tr.Inputs.Pairs != n || st.Read[sideControl] != len(ctrl) {
		t.Errorf("pairs = %d, control read %d; want %d, %d", tr.Inputs.Pairs, st.Read[sideControl], n, len(ctrl))
	}
	if st.MaxPending > 4*window {
		t.Errorf("max pending = %d, want ≤ %d", st.MaxPending, 4*window)
	}
	// The example is the lowest Seq of the worst class, whatever the order.
	if ex := tr.Findings[0].Example; ex.Class != MissingInCandidate || ex.Seq != 97 {
		t.Errorf("example = %s seq %d, want missing_in_candidate seq 97", ex.Class, ex.Seq)
	}
}

func TestPairingErrors(t *testing.T) {
	sel := "SELECT id, v FROM t"
	var late []*replay.Result
	for i := int64(2); i <= 30; i++ {
		late = append(late, mk(i, sel, rows("1", "a")))
	}
	late = append(late, mk(1, sel, rows("1", "a"))) // 29 results after higher Seqs
	var inOrder []*replay.Result
	for i := int64(1); i <= 30; i++ {
		inOrder = append(inOrder, mk(i, sel, rows("1", "a")))
	}
	tests := []struct {
		name       string
		base, cand io.Reader
		want       string
	}{
		{"beyond the window", results(t, inOrder...), results(t, late...), "raise compare.pair_window"},
		{"duplicate", results(t, mk(1, sel, nil), mk(2, sel, nil)), results(t, mk(1, sel, nil), mk(1, sel, nil)), "two results for seq 1"},
		{"not a results file", strings.NewReader("{}\n"), results(t), "baseline: read results header"},
		{"cut short", results(t, mk(1, sel, nil)), strings.NewReader(`{"dbtwin_results":1}` + "\n" + `{"session":"s1","seq":1`), "candidate: read results line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.PairWindow = 10
			_, err := Compare(context.Background(), tt.base, tt.cand, nil, cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestCompareCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Compare(ctx, results(t, mk(1, "SELECT 1", nil)), results(t, mk(1, "SELECT 1", nil)), nil, DefaultConfig())
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("err = %v, want context canceled", err)
	}
}

// synthetic streams n results shuffled within window into a pipe, from a
// goroutine, so that no test holds a whole file in memory. skip leaves out
// a stretch of Seqs.
func synthetic(t *testing.T, n, window int, seed uint64, skip func(int64) bool) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		rng := rand.New(rand.NewPCG(seed, seed))
		w, err := replay.NewResultsWriter(pw, replay.ResultsHeader{Mode: replay.ModeConcurrent, SampleRows: 20})
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		block := make([]*replay.Result, 0, window)
		flush := func() error {
			rng.Shuffle(len(block), func(i, j int) { block[i], block[j] = block[j], block[i] })
			for _, r := range block {
				if err := w.WriteResult(r); err != nil {
					return err
				}
			}
			block = block[:0]
			return nil
		}
		for i := int64(1); i <= int64(n); i++ {
			if skip != nil && skip(i) {
				continue
			}
			block = append(block, &replay.Result{Session: fmt.Sprintf("s%d", i%16), Seq: i, SQL: "SELECT x FROM t WHERE id = 1",
				Fingerprint: fmt.Sprintf("fp%02d", i%20), Status: replay.StatusOK, Rows: 1, MultisetHash: "aa", OrderedHash: "bb",
				Duration: 1000 + int64ToDuration(i%7)})
			if len(block) == window {
				if err := flush(); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
		}
		if err := flush(); err != nil {
			pw.CloseWithError(err)
			return
		}
		pw.CloseWithError(w.Close())
	}()
	t.Cleanup(func() { pr.Close() })
	return pr
}

func TestBoundedMemory(t *testing.T) {
	const n, window = 200000, 64
	if testing.Short() {
		t.Skip("200k results")
	}
	tests := []struct {
		name string
		skip func(int64) bool
	}{
		{"same statements", nil},
		{"candidate lacks a long stretch", func(seq int64) bool { return seq > 50000 && seq <= 120000 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.PairWindow = window
			var st Stats
			rep, err := Compare(context.Background(), synthetic(t, n, window, 1, nil), synthetic(t, n, window, 2, tt.skip), nil, cfg, WithStats(&st))
			if err != nil {
				t.Fatal(err)
			}
			if st.Pairs != n || rep.Tenants[0].Inputs.Pairs != n {
				t.Errorf("pairs = %d, want %d", st.Pairs, n)
			}
			if st.MaxPending > 4*window || st.MaxQueued > 8*window {
				t.Errorf("max pending %d, max queued %d: want ≤ %d, %d (window %d)", st.MaxPending, st.MaxQueued, 4*window, 8*window, window)
			}
			t.Logf("max pending %d, max queued %d for window %d", st.MaxPending, st.MaxQueued, window)
		})
	}
}

func int64ToDuration(i int64) time.Duration { return time.Duration(i) * time.Millisecond }

// FuzzResultsPairing checks that every statement is paired exactly once,
// with the right missing side, whatever the presence pattern and the
// shuffling (within the window).
func FuzzResultsPairing(f *testing.F) {
	f.Add([]byte{0x13, 0x00, 0xff, 0x55, 0xaa, 0x01, 0x02})
	f.Add([]byte("all present, in order"))
	f.Add(bytes.Repeat([]byte{0xf0}, 64))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 || len(data) > 400 {
			return
		}
		window := int(data[0]%16) + 1
		seed := binary.LittleEndian.Uint16(data[:2])
		rng := rand.New(rand.NewPCG(uint64(seed), 3))
		var base, cand []*replay.Result
		want := map[Class]int{}
		for i, b := range data[2:] {
			seq := int64(i + 1)
			r := func() *replay.Result { return mk(seq, "SELECT 1", nil, withSession(fmt.Sprintf("s%d", b%3))) }
			switch b % 4 {
			case 0:
				base = append(base, r())
				want[MissingInCandidate]++
			case 1:
				cand = append(cand, r())
				want[MissingInBaseline]++
			default:
				base, cand = append(base, r()), append(cand, r())
				want[Same]++
			}
		}
		cfg := DefaultConfig()
		cfg.PairWindow = window
		var st Stats
		rep, err := Compare(context.Background(), results(t, shuffleWithin(rng, base, window)...), results(t, shuffleWithin(rng, cand, window)...), nil, cfg, WithStats(&st))
		if err != nil {
			t.Fatal(err)
		}
		got := map[Class]int{}
		for _, f := range rep.Tenants[0].Findings {
			for _, c := range f.Classes {
				got[c.Class] += c.Count
			}
		}
		for _, c := range []Class{Same, MissingInBaseline, MissingInCandidate} {
			if got[c] != want[c] {
				t.Fatalf("%s = %d, want %d (window %d)", c, got[c], want[c], window)
			}
		}
		if st.MaxPending > 4*window+2 {
			t.Fatalf("max pending %d for window %d", st.MaxPending, window)
		}
	})
}
