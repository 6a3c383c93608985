package connector

import (
	"crypto/rand"
	"encoding/binary"
	"strconv"
	"sync/atomic"
)

// maxReference is the largest Reference/InputReference the schemas allow (RecordReferenceType,
// Num14ReferenceType: a decimal of at most 14 digits).
const maxReference = 99999999999999

// referenceSource hands out the unique numbers of RecordCommonInput/Reference (Insurability v2)
// and InputReference (GenericInsurability): at most 14 digits, as the schemas require. They are
// the correlation key of a call (the answer's RecordCommonOutput echoes them). The official
// connector uses the time to the second (taktik/freehealth-connector,
// src/main/java/org/taktik/connector/technical/idgenerator/impl/DateTimeIdGenerator.java),
// which repeats within a second; here a counter starting at a random point of the range gives
// every call of a process its own number, and two processes the same one with odds of about
// calls/9·10^13. Safe for concurrent use.
type referenceSource struct {
	n atomic.Uint64
}

func newReferenceSource() *referenceSource {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	r := &referenceSource{}
	// Start in the lower 90% so a long run wraps late; always 14 digits until it wraps.
	r.n.Store(1e13 + binary.BigEndian.Uint64(b[:])%(8e13))
	return r
}

// next returns the next reference, 1 to 14 decimal digits, never 0.
func (r *referenceSource) next() string {
	v := r.n.Add(1)%maxReference + 1
	return strconv.FormatUint(v, 10)
}
