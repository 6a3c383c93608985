package connector

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// eHealthBox publication 3.0: sending a message is the reference write (schema
// ehealth-ehBox-publication-schema-protocol-3_0.xsd; root SendMessageRequest in the
// publication namespace, every child unqualified).
const (
	NSEHealthBoxPublication = "urn:be:fgov:ehealth:ehbox:publication:protocol:v3"
	// ActionEHealthBoxSend is the SOAPAction the official connector sends (taktik/freehealth-connector,
	// src/main/kotlin/org/taktik/connector/business/ehbox/service/impl/EhboxServiceImpl.kt, sendMessage).
	ActionEHealthBoxSend = "urn:be:fgov:ehealth:ehbox:publication:protocol:v3:sendMessage"
	// ServiceEHealthBox is the short service-list name of eHealthBox publication v3
	// (uddi:ehealth-fgov-be:business:ehboxpublication:v3).
	ServiceEHealthBox = "ehboxpublication:v3"
	// MaxPublicationID is the length limit of a PublicationId (PublicationIdType).
	MaxPublicationID = 13
)

// EHealthBoxAddress names an eHealthBox: Type is INSS, NIHII, CBE, EHP, …; Quality the box's
// quality (DOCTOR, PHARMACY, NURSE, …); SubType optional.
type EHealthBoxAddress struct {
	ID, Type, SubType, Quality string
}

// EHealthBoxMessage is a document sent to eHealthBoxes. The library does not seal: Content,
// FreeText and PatientINSS go on the wire as given (base64), so give them already sealed for
// the recipients (ETK) and set Encrypted when they are.
type EHealthBoxMessage struct {
	// PublicationID is the message's PublicationId, its idempotency key: the platform
	// deduplicates on it, so a replay never publishes twice. 1 to 13 letters or digits;
	// "" = 13 random ones (returned in the Receipt's Key).
	PublicationID string
	// Partition orders writes as Write.Partition does (for example the patient's SSIN).
	Partition string
	// Sender is the box the message is sent from (BoxId); nil = the caller's own box.
	Sender *EHealthBoxAddress
	// Recipients are the destination boxes; at least one.
	Recipients []EHealthBoxAddress
	// Title is the document's title, 1 to 400 characters (sent in clear: no personal data).
	Title string
	// Content is the document (EncryptableTextContent), sealed or not; required.
	Content []byte
	// MimeType of the document; "" = text/plain. FileName its download name; "" = body.txt
	// (the official connector's defaults).
	MimeType, FileName string
	// FreeText is optional free information (EncryptableFreeText), sealed when Encrypted.
	FreeText []byte
	// PatientINSS is the optional patient identifier (EncryptableINSSPatient), sealed when
	// Encrypted.
	PatientINSS []byte
	// Encrypted says Content, FreeText and PatientINSS are sealed (IsEncrypted).
	Encrypted bool
	// Important marks the message important; the receipts ask for the publication, reception
	// and reading acknowledgements.
	Important                                        bool
	PublicationReceipt, ReceivedReceipt, ReadReceipt bool
}

// newPublicationID returns 13 random letters and digits.
func newPublicationID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	var b [MaxPublicationID]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

func (m EHealthBoxMessage) normalize() (EHealthBoxMessage, error) {
	if m.PublicationID == "" {
		m.PublicationID = newPublicationID()
	}
	if len(m.PublicationID) > MaxPublicationID || !isAlnumString(m.PublicationID) {
		return m, &RequestError{Field: "EHealthBoxMessage.PublicationID", Reason: "1 to 13 letters or digits"}
	}
	if len(m.Recipients) == 0 || len(m.Recipients) > 1000 {
		return m, &RequestError{Field: "EHealthBoxMessage.Recipients", Reason: "1 to 1000 recipients"}
	}
	check := func(field string, a EHealthBoxAddress) error {
		for _, v := range []string{a.ID, a.Type, a.Quality} {
			if strings.TrimSpace(v) == "" || len(v) > 64 || !utf8.ValidString(v) {
				return &RequestError{Field: field, Reason: "ID, Type and Quality are required, at most 64 characters"}
			}
		}
		if len(a.SubType) > 64 || !utf8.ValidString(a.SubType) {
			return &RequestError{Field: field, Reason: "SubType longer than 64 characters"}
		}
		return nil
	}
	if m.Sender != nil {
		if err := check("EHealthBoxMessage.Sender", *m.Sender); err != nil {
			return m, err
		}
	}
	for _, r := range m.Recipients {
		if err := check("EHealthBoxMessage.Recipients", r); err != nil {
			return m, err
		}
	}
	if n := utf8.RuneCountInString(m.Title); n == 0 || n > 400 || !utf8.ValidString(m.Title) {
		return m, &RequestError{Field: "EHealthBoxMessage.Title", Reason: "1 to 400 characters"}
	}
	if len(m.Content) == 0 {
		return m, &RequestError{Field: "EHealthBoxMessage.Content", Reason: "empty"}
	}
	if m.MimeType == "" {
		m.MimeType = "text/plain"
	}
	if m.FileName == "" {
		m.FileName = "body.txt"
	}
	for _, f := range []struct{ name, v string }{{"MimeType", m.MimeType}, {"FileName", m.FileName}} {
		if n := utf8.RuneCountInString(f.v); n > 255 || !utf8.ValidString(f.v) {
			return m, &RequestError{Field: "EHealthBoxMessage." + f.name, Reason: "1 to 255 characters"}
		}
	}
	return m, nil
}

func isAlnumString(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return s != ""
}

// addEHealthBoxAddress writes an EhboxIdentifierType/BoxIdType: Id, Type, SubType, Quality.
func addEHealthBoxAddress(el *etree.Element, a EHealthBoxAddress) {
	add(el, "Id", a.ID)
	add(el, "Type", a.Type)
	if a.SubType != "" {
		add(el, "SubType", a.SubType)
	}
	add(el, "Quality", a.Quality)
}

// buildSendMessageRequest builds SendMessageRequest as the official connector's
// SendMessageBuilderImpl does (taktik/freehealth-connector,
// src/main/kotlin/org/taktik/connector/business/ehbox/v3/builders/impl/SendMessageBuilderImpl.kt):
// the document as EncryptableTextContent with Digest = base64(SHA-256(content as sent)),
// ContentSpecification with the package name as ApplicationName (at most 25 characters) and
// ContentType DOCUMENT. m must be normalized.
func buildSendMessageRequest(m EHealthBoxMessage, o requestOrigin) *etree.Element {
	root := etree.NewElement("ehboxp:SendMessageRequest")
	root.CreateAttr("xmlns:ehboxp", NSEHealthBoxPublication)
	root.CreateAttr("PublicationId", m.PublicationID)
	if m.Sender != nil {
		addEHealthBoxAddress(add(root, "BoxId", ""), *m.Sender)
	}
	for _, r := range m.Recipients {
		addEHealthBoxAddress(add(root, "DestinationContext", ""), r)
	}
	cc := add(root, "ContentContext", "")
	content := add(cc, "Content", "")
	doc := add(content, "Document", "")
	add(doc, "Title", m.Title)
	add(doc, "EncryptableTextContent", base64.StdEncoding.EncodeToString(m.Content))
	add(doc, "DownloadFileName", m.FileName)
	add(doc, "MimeType", m.MimeType)
	sum := sha256.Sum256(m.Content)
	add(doc, "Digest", base64.StdEncoding.EncodeToString(sum[:]))
	if len(m.FreeText) > 0 {
		add(add(content, "FreeInformations", ""), "EncryptableFreeText", base64.StdEncoding.EncodeToString(m.FreeText))
	}
	if len(m.PatientINSS) > 0 {
		add(content, "EncryptableINSSPatient", base64.StdEncoding.EncodeToString(m.PatientINSS))
	}
	spec := add(cc, "ContentSpecification", "")
	if name := strings.TrimSpace(o.Package.Name); name != "" {
		add(spec, "ApplicationName", truncateRunes(name, 25))
	}
	add(spec, "ContentType", "DOCUMENT")
	add(spec, "IsImportant", boolText(m.Important))
	add(spec, "IsEncrypted", boolText(m.Encrypted))
	add(spec, "PublicationReceipt", boolText(m.PublicationReceipt))
	add(spec, "ReceivedReceipt", boolText(m.ReceivedReceipt))
	add(spec, "ReadReceipt", boolText(m.ReadReceipt))
	return root
}

// truncateRunes cuts s to at most n characters.
func truncateRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

// parseSendMessageResponse reads a SendMessageResponse: Status Code 100 or 200 (as the
// official EhboxReplyValidatorImpl accepts) is a publication and returns SentPublicationId,
// which must echo the PublicationId sent when present; any other code is a *BusinessError
// (826: a recipient is out of office). Anything the schema does not allow is a *ResponseError.
func parseSendMessageResponse(el *etree.Element, publicationID string) (string, error) {
	r := &answerReader{service: ServiceEHealthBox}
	s := r.root(el, NSEHealthBoxPublication, "SendMessageResponse")
	code, msg := readStatus(s, nsNone)
	for _, rc := range s.many(nsNone, "Recipient", 0, 1<<16) {
		rs := r.seq(rc, s.path+"/Recipient")
		rs.text(nsNone, "Id")
		rs.text(nsNone, "Type")
		rs.optText(nsNone, "SubType")
		rs.text(nsNone, "Quality")
		if u := rs.opt(nsNone, "User"); u != nil {
			rs.length(rs.leaf(u, "User"), "User", 8, 13)
		}
		if rs.peek(nsNone, "AbsentFrom") {
			rs.reqDate(nsNone, "AbsentFrom")
			rs.reqDate(nsNone, "AbsentTo")
			for _, sub := range rs.many(nsNone, "Substitute", 0, 1<<10) {
				ss := r.seq(sub, rs.path+"/Substitute")
				ss.text(nsNone, "Id")
				ss.text(nsNone, "Type")
				ss.optText(nsNone, "SubType")
				ss.text(nsNone, "Quality")
				ss.opt(nsNone, "User")
				ss.end()
			}
		}
		rs.end()
	}
	s.end()
	sent := ""
	if a := el.SelectAttr("SentPublicationId"); a != nil && !r.failed() {
		sent = a.Value
		s.length(sent, "@SentPublicationId", 1, MaxPublicationID)
	}
	if r.failed() {
		return "", r.err
	}
	switch code {
	case "100", "200":
		if sent != "" && sent != publicationID {
			return "", &ResponseError{Service: ServiceEHealthBox, Element: "SendMessageResponse/@SentPublicationId", Reason: "does not echo the PublicationId sent"}
		}
		if sent == "" {
			sent = publicationID
		}
		return sent, nil
	default:
		return "", &BusinessError{Service: ServiceEHealthBox, Code: truncateText(code, 16), Message: truncateText(msg, 256)}
	}
}

// SendMessage sends an eHealthBox message (publication 3.0) as a write: live when the
// platform answers, otherwise queued durably and published exactly once when eHealthBox is
// back (the PublicationID is the idempotency key). See Submit for ordering, fallback and
// rejections. The Receipt's Key is the PublicationID. Safe for concurrent use.
func (c *Client) SendMessage(ctx context.Context, m EHealthBoxMessage) (Receipt, error) {
	m, err := m.normalize()
	if err != nil {
		return Receipt{}, err
	}
	doc := etree.NewDocument()
	doc.SetRoot(buildSendMessageRequest(m, c.origin))
	body, err := doc.WriteToBytes()
	if err != nil {
		return Receipt{}, &RequestError{Field: "EHealthBoxMessage", Reason: "cannot be serialized"}
	}
	if len(body) > MaxWritePayload {
		return Receipt{}, &RequestError{Field: "EHealthBoxMessage.Content", Reason: "the message is larger than 1 MiB"}
	}
	return c.submit(ctx, Write{Service: ServiceEHealthBox, Action: ActionEHealthBoxSend, Body: body,
		IdempotencyKey: m.PublicationID, Partition: m.Partition})
}
