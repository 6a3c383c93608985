package platformtest

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// NSEHealthBoxPublication is the namespace of eHealthBox publication v3.
const NSEHealthBoxPublication = "urn:be:fgov:ehealth:ehbox:publication:protocol:v3"

// eHealthBox status codes. The official connector accepts 100 and 200 as
// success (taktik/freehealth-connector, EhboxReplyValidatorImpl); the
// platform answers a publication with 100. A refusal by the business rules
// (SetWriteValidator) is answered with platformtest's own code 400.
const (
	EHealthBoxOK       = "100"
	EHealthBoxRejected = "400"
)

// Write is a message the eHealthBox accepted. Each PublicationId is
// accepted once, whatever the retries and whichever site they reach.
type Write struct {
	Key string // SendMessageRequest/@PublicationId, the idempotency key
	// Partition is the first recipient, "<Type>:<Id>" of the first
	// DestinationContext (e.g. "NIHII:25123456"): the order that matters for
	// a recipient.
	Partition string
	Title     string // Document/Title
	Detail    []byte // the Document's content (EncryptableTextContent decoded; a swaRef's URI as is)
	Site      string // the site that accepted it
	Service   string // ServiceEHealthBox
	Sender    string // name of the identity that signed it ("" if unknown)
	At        time.Time
	Attempts  int // requests carrying this key, the accepting one included
}

// Writes returns the accepted messages in the order they were accepted.
func (p *Platform) Writes() []Write {
	p.wrMu.Lock()
	defer p.wrMu.Unlock()
	out := append([]Write(nil), p.writes...)
	for i := range out {
		out[i].Detail = append([]byte(nil), out[i].Detail...)
	}
	return out
}

// SetWriteValidator installs a business rule for messages: one for which
// fn returns an error is refused (Status/Code 400 with the error as
// Status/Message) and not recorded, so a later retry is judged again. nil
// accepts every schema-valid message.
func (p *Platform) SetWriteValidator(fn func(Write) error) {
	p.wrMu.Lock()
	p.validate = fn
	p.wrMu.Unlock()
}

// serveEHealthBox answers SendMessageRequest (eHealthBox publication 3.0),
// deduplicating on PublicationId: a repeated one is answered with the same
// success and counted as OutcomeDuplicate.
func (p *Platform) serveEHealthBox(x *exchange) reply {
	if r := checkAction(x, ActionEHealthBox); r != nil {
		return *r
	}
	c, rej := p.authenticate(x)
	if rej != nil {
		return *rej
	}
	req := c.verified.Body
	if r := checkSchema(SchemaEHealthBox, req); r != nil {
		return *r
	}
	doc := path(req, "ContentContext", "Content", "Document")
	w := Write{
		Key:     req.SelectAttrValue("PublicationId", ""),
		Title:   text(doc, "Title"),
		Site:    x.site.name,
		Service: x.service,
		At:      x.now(),
	}
	if dc := child(req, "DestinationContext"); dc != nil {
		w.Partition = text(dc, "Type") + ":" + text(dc, "Id")
	}
	if c.identity != nil {
		w.Sender = c.identity.Name
	}
	var problem error
	if tc := child(doc, "EncryptableTextContent"); tc != nil {
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(tc.Text()), ""))
		if err != nil {
			problem = fmt.Errorf("document content is not canonical base64")
		}
		w.Detail = b
	} else {
		w.Detail = []byte(text(doc, "EncryptableBinaryContent"))
	}
	if problem == nil && w.Key == "" {
		problem = fmt.Errorf("no PublicationId: the message cannot be deduplicated")
	}

	outcome := OutcomeOK
	if problem == nil && !p.isAccepted(w.Key) {
		p.wrMu.Lock()
		validate := p.validate
		p.wrMu.Unlock()
		if validate != nil {
			problem = validate(w) // outside the lock: fn may call the platform
		}
	}
	if problem == nil {
		p.wrMu.Lock()
		if i, dup := p.writeKeys[w.Key]; dup {
			p.writes[i].Attempts++
			outcome = OutcomeDuplicate
		} else {
			w.Attempts = 1
			p.writeKeys[w.Key] = len(p.writes)
			p.writes = append(p.writes, w)
		}
		p.wrMu.Unlock()
	}

	resp := builder{"ehboxp"}.el(nil, "SendMessageResponse")
	resp.CreateAttr("xmlns:ehboxp", NSEHealthBoxPublication)
	resp.CreateAttr("Id", newID())
	if problem != nil {
		status(resp, EHealthBoxRejected, problem.Error())
		return answer(SchemaEHealthBox, resp, OutcomeBusiness)
	}
	resp.CreateAttr("SentPublicationId", w.Key)
	status(resp, EHealthBoxOK, "SUCCESS")
	return answer(SchemaEHealthBox, resp, outcome)
}

func (p *Platform) isAccepted(key string) bool {
	p.wrMu.Lock()
	defer p.wrMu.Unlock()
	_, ok := p.writeKeys[key]
	return ok
}
