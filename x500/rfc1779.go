package x500

import (
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrMalformed is wrapped by the error of RFC1779 when the name is not a DER RDNSequence.
var ErrMalformed = errors.New("x500: malformed distinguished name")

// keywords are the attribute types Java writes by name in RFC 1779 form (its AVAKeyword table
// entries marked as RFC 1779 keywords); any other type is written "OID.n.n.n".
var keywords = map[string]string{
	"2.5.4.3":  "CN",
	"2.5.4.6":  "C",
	"2.5.4.7":  "L",
	"2.5.4.8":  "ST",
	"2.5.4.10": "O",
	"2.5.4.11": "OU",
	"2.5.4.9":  "STREET",
}

// escapees are the characters that make Java quote a value (and '"' and '\' are also
// backslash-escaped inside the quotes).
const escapees = ",+=\n<>#;\\\""

type atv struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// rdnSET is a SET OF AttributeTypeAndValue (encoding/asn1 reads a slice type whose name ends in
// SET as a SET OF).
type rdnSET []atv

// RFC1779 renders a DER-encoded Name (an x509.Certificate's RawSubject or RawIssuer) as Java's
// X500Principal.getName("RFC1779") does: the RDNs from the last encoded (the most specific,
// CN) to the first (C), separated by ", "; the values of a multi-valued RDN joined by " + "; each
// value as KEYWORD=value with the keywords CN, C, L, ST, O, OU and STREET, any other type as
// OID.n.n.n=value (SERIALNUMBER is OID.2.5.4.5). A value is quoted ("…") when it contains one of
// , + = < > # ; " \ or a newline, starts or ends with a space, or holds two spaces in a row;
// inside, " and \ are escaped with a backslash. A value that is not a string type is written
// # and the hex of its DER encoding. The cost is linear in the size of raw.
func RFC1779(raw []byte) (string, error) {
	var seq []rdnSET
	rest, err := asn1.Unmarshal(raw, &seq)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(rest) > 0 {
		return "", fmt.Errorf("%w: %d bytes after the name", ErrMalformed, len(rest))
	}
	var b strings.Builder
	b.Grow(len(raw))
	for i := len(seq) - 1; i >= 0; i-- {
		if i != len(seq)-1 {
			b.WriteString(", ")
		}
		for j, a := range seq[i] {
			if j > 0 {
				b.WriteString(" + ")
			}
			oid := a.Type.String()
			if k, ok := keywords[oid]; ok {
				b.WriteString(k)
			} else {
				b.WriteString("OID." + oid)
			}
			b.WriteByte('=')
			s, ok := valueString(a.Value)
			if !ok {
				b.WriteByte('#')
				b.WriteString(strings.ToUpper(fmt.Sprintf("%x", a.Value.FullBytes)))
				continue
			}
			writeValue(&b, s)
		}
	}
	return b.String(), nil
}

// valueString decodes the string types Java reads as strings (its DerValue.getAsString); ok is
// false for any other type, which Java writes in hex.
func valueString(v asn1.RawValue) (string, bool) {
	if v.Class != asn1.ClassUniversal || v.IsCompound {
		return "", false
	}
	switch v.Tag {
	case asn1.TagUTF8String:
		return strings.ToValidUTF8(string(v.Bytes), "\uFFFD"), true
	case asn1.TagPrintableString, asn1.TagIA5String, 27: // 27: GeneralString
		return latin1(v.Bytes), true
	case asn1.TagT61String:
		return latin1(v.Bytes), true // Java reads T61String as ISO-8859-1
	case asn1.TagBMPString:
		if len(v.Bytes)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(v.Bytes)/2)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(v.Bytes[2*i:])
		}
		return string(utf16.Decode(u)), true
	case 28: // UniversalString (UTF-32BE)
		if len(v.Bytes)%4 != 0 {
			return "", false
		}
		var b strings.Builder
		for i := 0; i < len(v.Bytes); i += 4 {
			r := rune(binary.BigEndian.Uint32(v.Bytes[i:]))
			if !utf8.ValidRune(r) {
				r = utf8.RuneError
			}
			b.WriteRune(r)
		}
		return b.String(), true
	}
	return "", false
}

func latin1(p []byte) string {
	r := make([]rune, len(p))
	for i, c := range p {
		r[i] = rune(c)
	}
	return string(r)
}

// isPrintableStringChar is ASN.1's PrintableString alphabet.
func isPrintableStringChar(c rune) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.ContainsRune(" '()+,-./:=?", c)
}

// writeValue writes s quoted and escaped where Java's RFC 1779 rendering does.
func writeValue(b *strings.Builder, s string) {
	runes := []rune(s)
	n := len(runes)
	alreadyQuoted := n > 1 && runes[0] == '"' && runes[n-1] == '"'
	var out strings.Builder
	out.Grow(len(s) + 2)
	quote, prevWhite := false, false
	for i, c := range runes {
		if alreadyQuoted && (i == 0 || i == n-1) {
			out.WriteRune(c)
			continue
		}
		special := strings.ContainsRune(escapees, c)
		if !isPrintableStringChar(c) && !special {
			prevWhite = false
			out.WriteRune(c)
			continue
		}
		white := c == ' ' || c == '\n'
		if !quote && ((i == 0 && white) || special) {
			quote = true
		}
		if white {
			if prevWhite {
				quote = true
			}
			prevWhite = true
		} else {
			if c == '"' || c == '\\' {
				out.WriteByte('\\')
			}
			prevWhite = false
		}
		out.WriteRune(c)
	}
	v := out.String()
	if strings.HasSuffix(v, " ") || strings.HasSuffix(v, "\n") {
		quote = true
	}
	if quote && !alreadyQuoted {
		b.WriteByte('"')
		b.WriteString(v)
		b.WriteByte('"')
		return
	}
	b.WriteString(v)
}
