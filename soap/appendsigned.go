package soap

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"sync"

	"github.com/beevik/etree"
)

// Canonical returns the exclusive canonical form (exc-c14n, no comments, empty prefix
// list) of el as the signer and the verifier compute it. For a detached element this is
// its form standing alone: the bytes AppendSigned expects as its payload.
func Canonical(el *etree.Element) ([]byte, error) {
	if el == nil {
		return nil, errors.New("soap: canonical: nil element")
	}
	return canonical(el, "", nil)
}

// signScratch is one AppendSigned's working memory, pooled: the digest state, the
// canonical forms being digested and the random bytes of the IDs.
type signScratch struct {
	h       hash.Hash
	canon   []byte
	digests [3][sha256.Size]byte // of the references
	sum     [sha256.Size]byte    // of SignedInfo
	// rnd holds random bytes from crypto/rand, read 1 KiB at a time (one system call for 16
	// messages); rnd[used:] are still unused.
	rnd  [1024]byte
	used int
}

var scratchPool = sync.Pool{New: func() any {
	return &signScratch{h: sha256.New(), canon: make([]byte, 0, 2048), used: 1024}
}}

// The fixed parts of what AppendSigned writes; the canonical forms (…C14N) differ from the
// message's only by the namespace declarations exc-c14n renders on the apex.
const (
	envelopeOpen = `<soapenv:Envelope xmlns:soapenv="` + NSEnvelope + `"><soapenv:Header>` +
		`<wsse:Security xmlns:wsse="` + NSWSSE + `" xmlns:wsu="` + NSWSU + `" soapenv:mustUnderstand="1">`
	timestampOpen     = `<wsu:Timestamp wsu:Id="`
	timestampOpenC14N = `<wsu:Timestamp xmlns:wsu="` + NSWSU + `" wsu:Id="`
	bstAttrs          = `EncodingType="` + encodingBase64 + `" ValueType="` + valueTypeX509 + `" wsu:Id="`
	bstOpen           = `<wsse:BinarySecurityToken ` + bstAttrs
	bstOpenC14N       = `<wsse:BinarySecurityToken xmlns:wsse="` + NSWSSE + `" xmlns:wsu="` + NSWSU + `" ` + bstAttrs
	bstClose          = `</wsse:BinarySecurityToken>`
	signatureOpen     = `<ds:Signature xmlns:ds="` + NSDSig + `" Id="SIG-`
	bodyOpen          = `<soapenv:Body xmlns:wsu="` + NSWSU + `" wsu:Id="`
	bodyOpenC14N      = `<soapenv:Body xmlns:soapenv="` + NSEnvelope + `" xmlns:wsu="` + NSWSU + `" wsu:Id="`
	bodyClose         = `</soapenv:Body>`
	envelopeClose     = `</soapenv:Envelope>`
)

var bodyCloseBytes = []byte(bodyClose)

// AppendSigned appends to dst the SOAP 1.1 envelope that Sign makes of an envelope whose Body
// holds payload and which has no other header — the same wsse:Security (the token, a
// wsu:Timestamp, a ds:Signature over the Body and the Timestamp, and the token with
// SignerConfig.SignToken; exclusive C14N, SHA-256, RSA-SHA256) — written in one pass, the
// digests computed from the bytes as they are written, without building a tree.
//
// payload must be one element in exclusive canonical form standing alone (what Canonical
// returns for it): every namespace prefix it uses declared where exc-c14n renders it,
// attributes in canonical order, explicit end tags, canonical escaping, no comments, no XML
// declaration. It must not use the prefixes soapenv, wsse, wsu or ds. AppendSigned does not
// parse it: the digest is taken over payload as given, so a payload not in that form gives
// a signature the platform refuses (prove a builder with Canonical in its tests).
//
// AppendSigned keeps no reference to dst or payload. Safe for concurrent use.
func (s *Signer) AppendSigned(dst, payload []byte) ([]byte, error) {
	if len(payload) < 4 || payload[0] != '<' || payload[1] == '?' || payload[1] == '!' || payload[len(payload)-1] != '>' {
		return dst, errors.New("soap: sign: payload is not an element")
	}
	sc := scratchPool.Get().(*signScratch)
	defer scratchPool.Put(sc)
	if sc.used+64 > len(sc.rnd) {
		if _, err := rand.Read(sc.rnd[:]); err != nil {
			return dst, fmt.Errorf("soap: sign: %w", err)
		}
		sc.used = 0
	}
	var ids [4][32]byte // body, timestamp, signature, token: 128 random bits each, in hex
	for i := range ids {
		hex.Encode(ids[i][:], sc.rnd[sc.used+16*i:sc.used+16*i+16])
	}
	clear(sc.rnd[sc.used : sc.used+64]) // each random byte serves once
	sc.used += 64
	bodyID, tsID, sigID, bstID := ids[0][:], ids[1][:], ids[2][:], ids[3][:]
	now := s.now().UTC()

	size := len(envelopeOpen) + len(s.raw) + len(payload) + 2048
	if s.assert == nil {
		size += len(s.bst) + 256
	}
	orig := len(dst)
	dst = slices.Grow(dst, size)
	digests := &sc.digests
	var refs [3]sigRef
	n := 0

	// Body, digested as exc-c14n renders it: soapenv and wsu declared on it.
	open := append(sc.canon[:0], bodyOpenC14N+"id-"...)
	open = append(open, bodyID...)
	open = append(open, `">`...)
	h := sc.h
	h.Reset()
	h.Write(open)
	h.Write(payload)
	h.Write(bodyCloseBytes)
	h.Sum(digests[n][:0])
	refs[n] = sigRef{prefix: "id-", id: bodyID, digest: digests[n][:]}
	n++

	// Timestamp.
	ts := sc.canon[:0]
	ts = append(ts, timestampOpenC14N...)
	tsStart := len(timestampOpenC14N)
	ts = append(ts, "TS-"...)
	ts = append(ts, tsID...)
	ts = append(ts, `"><wsu:Created>`...)
	ts = now.AppendFormat(ts, timestampLayout)
	ts = append(ts, `</wsu:Created><wsu:Expires>`...)
	ts = now.Add(s.ttl).AppendFormat(ts, timestampLayout)
	ts = append(ts, `</wsu:Expires></wsu:Timestamp>`...)
	digests[n] = sha256.Sum256(ts)
	refs[n] = sigRef{prefix: "TS-", id: tsID, digest: digests[n][:]}
	n++

	dst = append(dst, envelopeOpen...)
	if s.assert != nil {
		dst = append(dst, s.raw...) // signed by its issuer: byte for byte
	}
	dst = append(dst, timestampOpen...)
	dst = append(dst, ts[tsStart:]...)
	if s.assert == nil {
		if s.signBST {
			bst := ts[len(ts):]
			bst = append(bst, bstOpenC14N...)
			bst = append(bst, "X509-"...)
			bst = append(bst, bstID...)
			bst = append(bst, `">`...)
			bst = append(bst, s.bst...)
			bst = append(bst, bstClose...)
			digests[n] = sha256.Sum256(bst)
			refs[n] = sigRef{prefix: "X509-", id: bstID, digest: digests[n][:]}
			n++
		}
		dst = append(dst, bstOpen...)
		dst = append(dst, "X509-"...)
		dst = append(dst, bstID...)
		dst = append(dst, `">`...)
		dst = append(dst, s.bst...)
		dst = append(dst, bstClose...)
	}

	// SignedInfo: its canonical form is signed, the message carries its usual form.
	si := appendSignedInfo(sc.canon[:0], refs[:n], true)
	sc.canon = si[:0] // keep the grown buffer for the next call
	sc.sum = sha256.Sum256(si)
	value, err := s.key.Sign(rand.Reader, sc.sum[:], crypto.SHA256)
	if err != nil {
		return dst[:orig], fmt.Errorf("soap: sign: %w", err)
	}
	dst = append(dst, signatureOpen...)
	dst = append(dst, sigID...)
	dst = append(dst, `">`...)
	dst = appendSignedInfo(dst, refs[:n], false)
	dst = append(dst, `<ds:SignatureValue>`...)
	dst = base64.StdEncoding.AppendEncode(dst, value)
	dst = append(dst, `</ds:SignatureValue><ds:KeyInfo><wsse:SecurityTokenReference>`...)
	if s.assert != nil {
		dst = append(dst, `<wsse:KeyIdentifier ValueType="`+valueTypeSAMLID+`">`...)
		dst = appendEscapedText(dst, s.id)
		dst = append(dst, `</wsse:KeyIdentifier>`...)
	} else {
		dst = append(dst, `<wsse:Reference URI="#X509-`...)
		dst = append(dst, bstID...)
		dst = append(dst, `" ValueType="`+valueTypeX509+`"/>`...)
	}
	dst = append(dst, `</wsse:SecurityTokenReference></ds:KeyInfo></ds:Signature></wsse:Security></soapenv:Header>`...)
	dst = append(dst, bodyOpen...)
	dst = append(dst, "id-"...)
	dst = append(dst, bodyID...)
	dst = append(dst, `">`...)
	dst = append(dst, payload...)
	dst = append(dst, bodyClose...)
	dst = append(dst, envelopeClose...)
	return dst, nil
}

// sigRef is one ds:Reference of AppendSigned: #prefix+id and its digest.
type sigRef struct {
	prefix string
	id     []byte
	digest []byte
}

// appendSignedInfo appends ds:SignedInfo over refs: in canonical form (the ds namespace
// declared on it, explicit end tags) or as the message carries it inside ds:Signature.
func appendSignedInfo(b []byte, refs []sigRef, canon bool) []byte {
	end := func(b []byte, name string) []byte {
		if canon {
			return append(append(append(b, "></ds:"...), name...), '>')
		}
		return append(b, "/>"...)
	}
	if canon {
		b = append(b, `<ds:SignedInfo xmlns:ds="`+NSDSig+`">`...)
	} else {
		b = append(b, `<ds:SignedInfo>`...)
	}
	b = append(b, `<ds:CanonicalizationMethod Algorithm="`+algExcC14N+`"`...)
	b = end(b, "CanonicalizationMethod")
	b = append(b, `<ds:SignatureMethod Algorithm="`+algRSASHA256+`"`...)
	b = end(b, "SignatureMethod")
	for _, r := range refs {
		b = append(b, `<ds:Reference URI="#`...)
		b = append(b, r.prefix...)
		b = append(b, r.id...)
		b = append(b, `"><ds:Transforms><ds:Transform Algorithm="`+algExcC14N+`"`...)
		b = end(b, "Transform")
		b = append(b, `</ds:Transforms><ds:DigestMethod Algorithm="`+algSHA256+`"`...)
		b = end(b, "DigestMethod")
		b = append(b, `<ds:DigestValue>`...)
		b = base64.StdEncoding.AppendEncode(b, r.digest)
		b = append(b, `</ds:DigestValue></ds:Reference>`...)
	}
	return append(b, `</ds:SignedInfo>`...)
}

// appendEscapedText appends s escaped as canonical XML escapes text.
func appendEscapedText(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			b = append(b, "&amp;"...)
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '\r':
			b = append(b, "&#xD;"...)
		default:
			b = append(b, c)
		}
	}
	return b
}
