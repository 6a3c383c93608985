// Package x500 renders X.500 distinguished names the way the eHealth platform's Java software
// writes them.
//
// The official connector puts certificate names in its STS requests with Java's
// X500Principal.getName("RFC1779"); the STS compares them with the signing certificate.
// Go's pkix.Name.String() is RFC 2253 and differs (it merges repeated OUs into one
// multi-valued RDN and writes SERIALNUMBER=), so the same certificate gives another string.
package x500
