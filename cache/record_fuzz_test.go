package cache

import (
	"bytes"
	"errors"
	"testing"
)

func fuzzKeyring(t testing.TB) *keyring {
	kr, err := newKeyring([]Key{{ID: "k1", Secret: bytes.Repeat([]byte{1}, 32)}, {ID: "k0", Secret: bytes.Repeat([]byte{2}, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// FuzzDecodeRecord feeds arbitrary bytes to everything that reads a record
// from disk: the header parser, authentication and decryption, and the field
// decoders of answers, outbox messages and dead letters. None may panic; what
// decodes must re-encode to something that decodes to the same.
func FuzzDecodeRecord(f *testing.F) {
	kr := fuzzKeyring(f)
	bucket, key := []byte("a:insurability"), []byte("0123456789abcdef0123456789abcdef")
	answer := encodeAnswer("85073003328", []byte("<answer/>"))
	msg := Message{IdempotencyKey: "ref-1", Partition: "p", Service: "svc", Payload: []byte("body"), Attempts: 3}
	f.Add(kr.seal(kindAnswer, 1, 2, bucket, key, answer))
	f.Add(kr.sealWith("k0", kindOutbox, 5, 0, bucket, key, encodeMessage(&msg, "", false)))
	f.Add(kr.seal(kindDead, 5, 6, bucket, key, encodeMessage(&msg, "status 400", true)))
	f.Add(kr.sealWith("k1", kindKeyCheck, 7, 0, bucket, key, bytes.Repeat([]byte{9}, 32)))
	f.Add(answer)
	f.Add(encodeMessage(&msg, "why", true))
	f.Add([]byte{})
	f.Add([]byte{recordVersion, kindAnswer, 64})
	f.Add([]byte{recordVersion, kindAnswer, 2, 'k', '1'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, raw []byte) {
		if h, prefix, nonce, ct, err := parseHeader(raw); err == nil {
			if len(nonce) != nonceSize || len(ct) < tagSize || len(prefix) != 3+len(h.keyID)+16 {
				t.Fatalf("inconsistent split: prefix %d nonce %d ct %d", len(prefix), len(nonce), len(ct))
			}
		}
		for kind := byte(kindAnswer); kind <= kindKeyCheck; kind++ {
			if _, pt, err := kr.open(raw, bucket, key, kind); err == nil {
				decodeAll(t, pt)
			} else if !errors.Is(err, ErrTampered) {
				t.Fatalf("open error does not wrap ErrTampered: %v", err)
			}
		}
		decodeAll(t, raw)
	})
}

func decodeAll(t *testing.T, pt []byte) {
	const limit = 1 << 20
	if k, v, err := decodeAnswer(pt, limit); err == nil {
		k2, v2, err := decodeAnswer(encodeAnswer(k, v), limit)
		if err != nil || k2 != k || !bytes.Equal(v2, v) {
			t.Fatalf("answer does not round-trip: %v", err)
		}
	}
	for _, dead := range []bool{false, true} {
		if m, reason, err := decodeMessage(pt, limit, dead); err == nil {
			m2, reason2, err := decodeMessage(encodeMessage(&m, reason, dead), limit, dead)
			if err != nil || m2.IdempotencyKey != m.IdempotencyKey || m2.Partition != m.Partition || m2.Service != m.Service ||
				!bytes.Equal(m2.Payload, m.Payload) || m2.Attempts != m.Attempts || reason2 != reason {
				t.Fatalf("message does not round-trip: %v", err)
			}
		}
	}
}

func TestRecord_SealOpenBindsBucketKeyAndHeader(t *testing.T) {
	kr := fuzzKeyring(t)
	bucket, key := []byte("a:etk"), []byte("k-1")
	rec := kr.seal(kindAnswer, 10, 20, bucket, key, encodeAnswer("x", []byte("y")))
	h, pt, err := kr.open(rec, bucket, key, kindAnswer)
	if err != nil || h.t1 != 10 || h.t2 != 20 || h.keyID != "k1" {
		t.Fatalf("open: %+v %v", h, err)
	}
	if k, v, err := decodeAnswer(pt, 100); err != nil || k != "x" || string(v) != "y" {
		t.Fatalf("decode: %q %q %v", k, v, err)
	}
	mutations := map[string]func() ([]byte, []byte, []byte, byte){
		"other bucket": func() ([]byte, []byte, []byte, byte) { return rec, []byte("a:token"), key, kindAnswer },
		"other key":    func() ([]byte, []byte, []byte, byte) { return rec, bucket, []byte("k-2"), kindAnswer },
		"other kind":   func() ([]byte, []byte, []byte, byte) { return rec, bucket, key, kindOutbox },
		"stored_at changed": func() ([]byte, []byte, []byte, byte) {
			r := bytes.Clone(rec)
			r[3+2+7]++
			return r, bucket, key, kindAnswer
		},
		"kind byte changed": func() ([]byte, []byte, []byte, byte) {
			r := bytes.Clone(rec)
			r[1] = kindOutbox
			return r, bucket, key, kindOutbox
		},
		"truncated": func() ([]byte, []byte, []byte, byte) { return rec[:len(rec)-1], bucket, key, kindAnswer },
		"unknown key id": func() ([]byte, []byte, []byte, byte) {
			r := bytes.Clone(rec)
			r[4] = '9'
			return r, bucket, key, kindAnswer
		},
	}
	for name, m := range mutations {
		raw, b, k, kind := m()
		if _, _, err := kr.open(raw, b, k, kind); !errors.Is(err, ErrTampered) {
			t.Errorf("%s: got %v, want ErrTampered", name, err)
		}
	}
}
