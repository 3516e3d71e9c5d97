package masking

import (
	"hash/maphash"
	"sync/atomic"
)

// scrubCache remembers what the scrub made of short values it has seen
// more than once (user agents, status words, the few agents' addresses of
// a history table): finding PII costs far more than a lookup, and the
// scrub is a function of the value alone (its transforms are keyed and
// deterministic), so a remembered output is the output.
//
// Memory is bounded: scrubSlots entries of at most scrubCacheMaxLen bytes
// in and scrubCacheMaxOut out, replaced (never grown) when a slot's hash
// collides. A value enters only on its second sighting (the "seen" table
// of hashes), so unique values — most of them — never displace repeated
// ones. It is safe for concurrent use without locks: slots hold immutable
// entries, and a lookup compares the whole value.
type scrubCache struct {
	seed  maphash.Seed
	seen  [scrubSeen]atomic.Uint64
	slots [scrubSlots]atomic.Pointer[scrubEntry]
}

const (
	scrubSlots       = 1024 // power of two
	scrubSeen        = 4096 // power of two
	scrubCacheMaxLen = 256
	scrubCacheMaxOut = 512
)

type scrubEntry struct {
	h       uint64
	in, out string
	changed bool
}

func newScrubCache() *scrubCache { return &scrubCache{seed: maphash.MakeSeed()} }

// scrub appends src with its findings replaced, and says whether any were.
func (s *scrubber) scrub(dst, src []byte) (out []byte, changed bool) {
	c := s.cache
	if c == nil || len(src) > scrubCacheMaxLen {
		fs := findPII(src, &s.on)
		return s.replace(dst, src, fs), len(fs) > 0
	}
	h := maphash.Bytes(c.seed, src)
	slot := &c.slots[h&(scrubSlots-1)]
	if e := slot.Load(); e != nil && e.h == h && e.in == string(src) {
		return append(dst, e.out...), e.changed
	}
	fs := findPII(src, &s.on)
	n := len(dst)
	dst = s.replace(dst, src, fs)
	if len(dst)-n <= scrubCacheMaxOut && c.seen[h>>32&(scrubSeen-1)].Swap(h) == h {
		slot.Store(&scrubEntry{h: h, in: string(src), out: string(dst[n:]), changed: len(fs) > 0})
	}
	return dst, len(fs) > 0
}
