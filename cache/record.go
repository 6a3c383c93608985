package cache

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"
)

// A sealed record, as stored as a bbolt value:
//
//	[0]      format version (1)
//	[1]      kind (answer, outbox entry, dead letter, key check)
//	[2]      n = length of the key ID (1..64)
//	[3:3+n]  key ID
//	8 bytes  t1, big-endian Unix nanoseconds (stored at / enqueued at / dead at)
//	8 bytes  t2 (not after / 0 / enqueued at)
//	12 bytes AES-GCM nonce
//	rest     AES-256-GCM ciphertext and tag of the record's fields
//
// The associated data is a domain string, the bucket name, the bbolt key and
// the header up to the nonce, so a record moved to another key or bucket, or
// whose clear-text times were altered, fails authentication. The times are in
// clear so purge and statistics need no decryption.
const (
	recordVersion = 1

	kindAnswer   = 1
	kindOutbox   = 2
	kindDead     = 3
	kindKeyCheck = 4

	nonceSize = 12
	tagSize   = 16

	// recordOverhead bounds what a record adds to its fields: header, field
	// lengths, tag.
	recordOverhead = 3 + 64 + 16 + nonceSize + tagSize + 8*binary.MaxVarintLen64
)

var (
	errMalformed = errors.New("malformed record")
	aadDomain    = []byte("ehgate/cache/v1\x00")
)

type header struct {
	kind   byte
	keyID  string
	t1, t2 int64
}

// parseHeader splits a raw record into its header, the authenticated prefix
// (everything before the nonce), the nonce and the ciphertext.
func parseHeader(raw []byte) (h header, prefix, nonce, ct []byte, err error) {
	if len(raw) < 3 {
		return h, nil, nil, nil, errMalformed
	}
	if raw[0] != recordVersion {
		return h, nil, nil, nil, fmt.Errorf("%w: version %d", errMalformed, raw[0])
	}
	n := int(raw[2])
	if n == 0 || n > 64 {
		return h, nil, nil, nil, errMalformed
	}
	end := 3 + n + 16
	if len(raw) < end+nonceSize+tagSize {
		return h, nil, nil, nil, errMalformed
	}
	h.kind = raw[1]
	h.keyID = string(raw[3 : 3+n])
	h.t1 = int64(binary.BigEndian.Uint64(raw[3+n:]))
	h.t2 = int64(binary.BigEndian.Uint64(raw[3+n+8:]))
	return h, raw[:end], raw[end : end+nonceSize], raw[end+nonceSize:], nil
}

// keyring holds the AEADs of the configured keys.
type keyring struct {
	current string
	aeads   map[string]cipher.AEAD
	wraps   map[string]cipher.AEAD // for the key-check record, derived separately
	order   []string
}

func newKeyring(keys []Key) (*keyring, error) {
	kr := &keyring{current: keys[0].ID, aeads: map[string]cipher.AEAD{}, wraps: map[string]cipher.AEAD{}}
	for _, k := range keys {
		a, err := deriveAEAD(k.Secret, "ehgate cache record key v1")
		if err != nil {
			return nil, err
		}
		w, err := deriveAEAD(k.Secret, "ehgate cache key check v1")
		if err != nil {
			return nil, err
		}
		kr.aeads[k.ID] = a
		kr.wraps[k.ID] = w
		kr.order = append(kr.order, k.ID)
	}
	return kr, nil
}

func deriveAEAD(secret []byte, info string) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, secret, nil, info, 32)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func appendAAD(dst, bucket, key, prefix []byte) []byte {
	dst = append(dst, aadDomain...)
	dst = binary.AppendUvarint(dst, uint64(len(bucket)))
	dst = append(dst, bucket...)
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	return append(dst, prefix...)
}

// seal encrypts plaintext under the current key (or the wrapping key for
// key-check records) as a record for bucket/key.
func (kr *keyring) seal(kind byte, t1, t2 int64, bucket, key, plaintext []byte) []byte {
	return kr.sealWith(kr.current, kind, t1, t2, bucket, key, plaintext)
}

func (kr *keyring) sealWith(id string, kind byte, t1, t2 int64, bucket, key, plaintext []byte) []byte {
	a := kr.aeads[id]
	if kind == kindKeyCheck {
		a = kr.wraps[id]
	}
	out := make([]byte, 0, 3+len(id)+16+nonceSize+len(plaintext)+tagSize)
	out = append(out, recordVersion, kind, byte(len(id)))
	out = append(out, id...)
	out = binary.BigEndian.AppendUint64(out, uint64(t1))
	out = binary.BigEndian.AppendUint64(out, uint64(t2))
	prefixLen := len(out)
	out = out[:prefixLen+nonceSize]
	_, _ = rand.Read(out[prefixLen:]) // never fails: crypto/rand crashes the program rather than return an error
	var aadBuf [256]byte
	aad := appendAAD(aadBuf[:0], bucket, key, out[:prefixLen])
	return a.Seal(out, out[prefixLen:], plaintext, aad)
}

// open authenticates and decrypts raw, a record stored under bucket/key, whose
// kind must be want. Errors wrap ErrTampered (authentication, unknown key)
// or errMalformed.
func (kr *keyring) open(raw, bucket, key []byte, want byte) (header, []byte, error) {
	h, prefix, nonce, ct, err := parseHeader(raw)
	if err != nil {
		return h, nil, fmt.Errorf("%w: %w", ErrTampered, err)
	}
	if h.kind != want {
		return h, nil, fmt.Errorf("%w: record of kind %d where %d was expected", ErrTampered, h.kind, want)
	}
	a := kr.aeads[h.keyID]
	if h.kind == kindKeyCheck {
		a = kr.wraps[h.keyID]
	}
	if a == nil {
		return h, nil, fmt.Errorf("%w: encrypted under key %q, which is not configured", ErrTampered, h.keyID)
	}
	aad := appendAAD(make([]byte, 0, 128), bucket, key, prefix)
	pt, err := a.Open(nil, nonce, ct, aad)
	if err != nil {
		return h, nil, fmt.Errorf("%w: under key %q", ErrTampered, h.keyID)
	}
	return h, pt, nil
}

// Fields of a record's plaintext: each a uvarint length then the bytes.

func appendField(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendFieldString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// fieldReader reads fields; every read is bounded by what is left and by limit.
type fieldReader struct {
	b     []byte
	limit int
	err   error
}

func (r *fieldReader) next() []byte {
	if r.err != nil {
		return nil
	}
	n, k := binary.Uvarint(r.b)
	if k <= 0 || n > uint64(len(r.b)-k) || n > uint64(r.limit) {
		r.err = errMalformed
		return nil
	}
	f := r.b[k : k+int(n)]
	r.b = r.b[k+int(n):]
	return f
}

func (r *fieldReader) uint() uint64 {
	f := r.next()
	if r.err != nil {
		return 0
	}
	v, k := binary.Uvarint(f)
	if k <= 0 || k != len(f) {
		r.err = errMalformed
		return 0
	}
	return v
}

func (r *fieldReader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = errMalformed
	}
	return r.err
}

// answer fields: logical key, value.
func encodeAnswer(key string, value []byte) []byte {
	b := make([]byte, 0, len(key)+len(value)+2*binary.MaxVarintLen64)
	b = appendFieldString(b, key)
	return appendField(b, value)
}

func decodeAnswer(pt []byte, maxValue int) (key string, value []byte, err error) {
	r := fieldReader{b: pt, limit: max(maxValue, MaxKeyBytes)}
	k := r.next()
	v := r.next()
	if err := r.done(); err != nil {
		return "", nil, err
	}
	if len(k) == 0 || len(k) > MaxKeyBytes {
		return "", nil, errMalformed
	}
	return string(k), v, nil
}

// outbox fields: idempotency key, partition, service, payload, attempts;
// dead letters add the reason.
func encodeMessage(m *Message, reason string, dead bool) []byte {
	b := make([]byte, 0, len(m.IdempotencyKey)+len(m.Partition)+len(m.Service)+len(m.Payload)+len(reason)+6*binary.MaxVarintLen64+8)
	b = appendFieldString(b, m.IdempotencyKey)
	b = appendFieldString(b, m.Partition)
	b = appendFieldString(b, m.Service)
	b = appendField(b, m.Payload)
	b = appendField(b, binary.AppendUvarint(nil, uint64(m.Attempts)))
	if dead {
		b = appendFieldString(b, reason)
	}
	return b
}

const maxReasonBytes = 4096

// maxAttempts bounds Message.Attempts in a record (and in an imported line).
const maxAttempts = 1 << 31

func decodeMessage(pt []byte, maxValue int, dead bool) (m Message, reason string, err error) {
	r := fieldReader{b: pt, limit: max(maxValue, MaxKeyBytes)}
	ik := r.next()
	part := r.next()
	svc := r.next()
	payload := r.next()
	attempts := r.uint()
	var why []byte
	if dead {
		why = r.next()
	}
	if err := r.done(); err != nil {
		return m, "", err
	}
	if len(ik) == 0 || len(ik) > MaxKeyBytes || len(part) > MaxKeyBytes || len(svc) > MaxKeyBytes || len(why) > maxReasonBytes || attempts > maxAttempts {
		return m, "", errMalformed
	}
	if payload == nil {
		payload = []byte{}
	}
	m = Message{IdempotencyKey: string(ik), Partition: string(part), Service: string(svc), Payload: payload, Attempts: int(attempts)}
	return m, string(why), nil
}

// indexer turns logical keys into the HMACs stored on disk.
type indexer struct {
	macs sync.Pool // of hash.Hash, HMAC-SHA256 under the derived key
}

func newIndexer(indexKey []byte) (*indexer, error) {
	k, err := hkdf.Key(sha256.New, indexKey, nil, "ehgate cache logical key v1", 32)
	if err != nil {
		return nil, err
	}
	ix := &indexer{}
	ix.macs.New = func() any { return hmac.New(sha256.New, k) }
	return ix, nil
}

func (ix *indexer) sum(domain, s string) []byte {
	m := ix.macs.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(domain))
	m.Write([]byte{0})
	m.Write([]byte(s))
	out := m.Sum(make([]byte, 0, 32))
	ix.macs.Put(m)
	return out
}
