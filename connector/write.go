package connector

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"time"

	"github.com/beevik/etree"
)

// The write service (MyCareNet tarification), API.md wire rules.
const (
	NSTarificationProtocol = "urn:be:fgov:ehealth:mycarenet:tarification:protocol:v1"
	ActionTarification     = "urn:be:fgov:ehealth:mycarenet:tarification:protocol:v1:SendTarificationRequest"
	// ServiceTarification is the short service-list name of the write service.
	ServiceTarification = "mycarenettarification:v1"
	// MaxWritePayload bounds one write's payload.
	MaxWritePayload = 1 << 20
)

// Write is one message for the platform that must be delivered exactly once.
type Write struct {
	// Service is the short service-list name; "" = ServiceTarification (the only write
	// wire format ehgate speaks today).
	Service string
	// IdempotencyKey identifies the write; the platform deduplicates on it, so a replay never
	// delivers twice. "" = a random key is generated (returned in the Receipt).
	// 1 to 64 characters of [A-Za-z0-9-_.:].
	IdempotencyKey string
	// Partition groups writes that must be delivered in order (for example one patient's SSIN).
	// It is hashed before it leaves the process or reaches the disk. "" = no ordering.
	Partition string
	// Payload is the message (sent base64 in Detail), at most MaxWritePayload bytes.
	Payload []byte
}

// Receipt says what happened to a write.
type Receipt struct {
	Key string // the idempotency key
	// Delivered: the platform accepted the write during this call.
	Delivered bool
	// Queued: the platform could not be reached; the write is durable in the outbox and will be
	// replayed exactly once when the service is back.
	Queued bool
	// Reference is the platform's reference (the key echoed) when Delivered.
	Reference string
	Endpoint  string    // the URL that accepted it, when Delivered
	At        time.Time // when it was delivered or queued
}

func (w Write) normalize() (Write, error) {
	if w.Service == "" {
		w.Service = ServiceTarification
	}
	if w.Service != ServiceTarification {
		return w, &RequestError{Field: "Write.Service", Reason: "only " + ServiceTarification + " writes are supported"}
	}
	if w.IdempotencyKey == "" {
		w.IdempotencyKey = newReference()
	}
	if len(w.IdempotencyKey) > 64 {
		return w, &RequestError{Field: "Write.IdempotencyKey", Reason: "longer than 64 characters"}
	}
	for _, c := range w.IdempotencyKey {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return w, &RequestError{Field: "Write.IdempotencyKey", Reason: "only letters, digits and -_.: are allowed"}
		}
	}
	if len(w.Payload) == 0 {
		return w, &RequestError{Field: "Write.Payload", Reason: "empty"}
	}
	if len(w.Payload) > MaxWritePayload {
		return w, &RequestError{Field: "Write.Payload", Reason: "larger than 1 MiB"}
	}
	return w, nil
}

// partitionHash is what leaves the process for a Partition: hex of a truncated SHA-256.
func partitionHash(p string) string {
	if p == "" {
		return ""
	}
	h := sha256.Sum256([]byte("ehgate-partition\x00" + p))
	return hex.EncodeToString(h[:16])
}

// buildWriteRequest builds SendTarificationRequest; w must be normalized and its Partition hashed.
func buildWriteRequest(w Write, hashedPartition string, o requestOrigin) *etree.Element {
	root := etree.NewElement("tar:SendTarificationRequest")
	root.CreateAttr("xmlns:tar", NSTarificationProtocol)
	const p = "tar:"
	addCommonInput(root, p, o)
	add(find(root, "CommonInput"), p+"InputReference", w.IdempotencyKey)
	if hashedPartition != "" {
		add(root, p+"Partition", hashedPartition)
	}
	add(root, p+"Detail", base64.StdEncoding.EncodeToString(w.Payload))
	return root
}

// parseWriteResponse reads SendTarificationResponse: Status/Code 200 returns the Reference;
// 400 is a *BusinessError (a rejection: retrying will not help).
func parseWriteResponse(el *etree.Element, key string) (string, error) {
	bad := func(reason string) (string, error) {
		return "", &ResponseError{Service: ServiceTarification, Reason: reason}
	}
	if el == nil || el.Tag != "SendTarificationResponse" {
		return bad("not a SendTarificationResponse")
	}
	code := textAt(el, "Status", "Code")
	switch code {
	case "200":
		ref := textAt(el, "Reference")
		if ref != key {
			return bad("Reference does not echo the idempotency key")
		}
		return ref, nil
	case "":
		return bad("no Status/Code")
	default:
		return "", &BusinessError{Service: ServiceTarification, Code: truncateText(code, 16), Message: truncateText(textAt(el, "Status", "Message"), 256)}
	}
}
