package masking

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sync"
)

// AlgorithmVersion versions every transform and the embedded dictionaries.
// It is part of the key derivation: a change to any algorithm or dictionary
// that would change an output bumps it, so outputs of one version are
// comparable run to run and never silently mixed with another's.
const AlgorithmVersion = 1

// MinKeyLen is the shortest secret key [NewKeyring] accepts, in bytes.
const MinKeyLen = 16

// Keyring holds the secret masking key and the per-domain subkeys derived
// from it: HMAC-SHA256(key, "dbtwin/v1/" + domain). It is safe for concurrent
// use. Its String, GoString and Format never reveal the key.
type Keyring struct {
	key []byte

	mu      sync.Mutex
	domains map[string]*domainKey
}

// NewKeyring returns a keyring for key (at least [MinKeyLen] bytes; the CLI
// reads it from DBTWIN_MASK_KEY). The key is copied.
func NewKeyring(key []byte) (*Keyring, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("new keyring: key is %d bytes, need at least %d (set DBTWIN_MASK_KEY to a long random string)", len(key), MinKeyLen)
	}
	return &Keyring{key: append([]byte(nil), key...), domains: map[string]*domainKey{}}, nil
}

// Fingerprint identifies the key without revealing it (16 hex digits of an
// HMAC of a fixed label), so reports can show whether two runs used the same
// key.
func (k *Keyring) Fingerprint() string {
	m := hmac.New(sha256.New, k.key)
	fmt.Fprintf(m, "dbtwin/v%d/fingerprint", AlgorithmVersion)
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// String describes the keyring by its fingerprint.
func (k *Keyring) String() string { return "masking.Keyring(" + k.Fingerprint() + ")" }

// GoString is String: %#v must not print the key either.
func (k *Keyring) GoString() string { return k.String() }

// Format implements fmt.Formatter so that no verb prints the key.
func (k *Keyring) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// domain returns the subkeys of one domain, deriving them once.
func (k *Keyring) domain(name string) *domainKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	if d, ok := k.domains[name]; ok {
		return d
	}
	m := hmac.New(sha256.New, k.key)
	fmt.Fprintf(m, "dbtwin/v%d/%s", AlgorithmVersion, name)
	d := &domainKey{name: name}
	copy(d.sub[:], m.Sum(nil))
	k.domains[name] = d
	return d
}

// domainKey is one domain's subkey and what is derived from it.
type domainKey struct {
	name string
	sub  [32]byte

	once  sync.Once
	block cipher.Block // AES-128 keyed by HMAC(sub, "aes")[:16]
	hkey  []byte       // HMAC key for keyed hashes of values
	pool  sync.Pool    // of *hasher keyed by hkey

	scratch sync.Pool // of *aesScratch for FF1 and the Feistel permutations
}

func (d *domainKey) init() {
	d.once.Do(func() {
		d.block, _ = aes.NewCipher(d.derive("aes")[:16]) // 16 bytes: cannot fail
		d.hkey = d.derive("hash")
		d.pool.New = func() any { return &hasher{h: hmac.New(sha256.New, d.hkey)} }
	})
}

// derive returns HMAC-SHA256(subkey, purpose).
func (d *domainKey) derive(purpose string) []byte {
	m := hmac.New(sha256.New, d.sub[:])
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// cipher returns the domain's AES-128 block cipher (for FF1 and the Feistel
// round function; a 128-bit key is ample for masking and 30% faster).
func (d *domainKey) cipher() cipher.Block { d.init(); return d.block }

// sum writes the keyed hash HMAC-SHA256(domain hash key, tag || value) into
// out. tag separates the uses one transform makes of the hash.
func (d *domainKey) sum(out *[32]byte, tag byte, value []byte) {
	d.init()
	h := d.pool.Get().(*hasher)
	h.h.Reset()
	h.tag[0] = tag
	h.h.Write(h.tag[:])
	h.h.Write(value)
	*out = [32]byte(h.h.Sum(h.sum[:0]))
	d.pool.Put(h)
}

// aesScratch holds the blocks one FF1 or Feistel call encrypts. Buffers
// passed to cipher.Block escape to the heap, so they are pooled.
type aesScratch struct {
	p, yc, r [16]byte
	q        [48]byte
}

// scratchPool returns the domain's pool of AES scratch space.
func (d *domainKey) scratchPool() *sync.Pool { return &d.scratch }

// getScratch takes scratch space from pool (nil: a new one).
func getScratch(pool *sync.Pool) *aesScratch {
	if pool != nil {
		if s, ok := pool.Get().(*aesScratch); ok {
			return s
		}
	}
	return new(aesScratch)
}

func putScratch(pool *sync.Pool, s *aesScratch) {
	if pool != nil {
		pool.Put(s)
	}
}

// sumCanonical is sum over canon(src), built in pooled scratch space (a
// caller's stack buffer passed to the hash would escape to the heap).
func (d *domainKey) sumCanonical(out *[32]byte, tag byte, src []byte, canon func(dst, src []byte) []byte) {
	d.init()
	h := d.pool.Get().(*hasher)
	h.buf = canon(h.buf[:0], src)
	h.h.Reset()
	h.tag[0] = tag
	h.h.Write(h.tag[:])
	h.h.Write(h.buf)
	*out = [32]byte(h.h.Sum(h.sum[:0]))
	d.pool.Put(h)
}

// hasher is a pooled HMAC state with scratch space, so hashing a value does
// not allocate.
type hasher struct {
	h   hash.Hash
	tag [1]byte
	sum [32]byte
	buf []byte
}

// errNoKey is returned where a keyring is required but missing.
var errNoKey = errors.New("no masking key (set DBTWIN_MASK_KEY)")
