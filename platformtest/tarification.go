package platformtest

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// NSTarification is the namespace of the write service.
const NSTarification = "urn:be:fgov:ehealth:mycarenet:tarification:protocol:v1"

// Write is a write the platform accepted. Each idempotency key is accepted
// once, whatever the retries and whichever site they reach.
type Write struct {
	Key       string // CommonInput/InputReference, the idempotency key
	Site      string // the site that accepted it
	Service   string
	Partition string
	Detail    []byte // decoded payload
	Sender    string // name of the identity that signed it ("" if unknown)
	At        time.Time
	Attempts  int // requests carrying this key, the accepting one included
}

// Writes returns the accepted writes in the order they were accepted.
func (p *Platform) Writes() []Write {
	p.wrMu.Lock()
	defer p.wrMu.Unlock()
	out := append([]Write(nil), p.writes...)
	for i := range out {
		out[i].Detail = append([]byte(nil), out[i].Detail...)
	}
	return out
}

// SetWriteValidator installs a business rule for writes: a write for which
// fn returns an error is rejected (Status/Code 400 with the error as
// Status/Message) and not recorded, so a later retry is judged again. nil
// accepts every well-formed write.
func (p *Platform) SetWriteValidator(fn func(Write) error) {
	p.wrMu.Lock()
	p.validate = fn
	p.wrMu.Unlock()
}

// serveTarification answers SendTarificationRequest, deduplicating on the
// idempotency key.
func (p *Platform) serveTarification(x *exchange) reply {
	if r := checkAction(x, ActionTarification); r != nil {
		return *r
	}
	c, rej := p.authenticate(x)
	if rej != nil {
		return *rej
	}
	req := c.verified.Body
	if req.Tag != "SendTarificationRequest" {
		return badRequest("body is not SendTarificationRequest")
	}
	w := Write{
		Key:       text(req, "CommonInput", "InputReference"),
		Site:      x.site.name,
		Service:   x.service,
		Partition: text(req, "Partition"),
		At:        x.now(),
	}
	if c.identity != nil {
		w.Sender = c.identity.Name
	}
	detail, derr := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text(req, "Detail")), ""))
	w.Detail = detail
	var problem error
	switch {
	case w.Key == "":
		problem = fmt.Errorf("missing CommonInput/InputReference")
	case w.Partition == "":
		problem = fmt.Errorf("missing Partition")
	case derr != nil:
		problem = fmt.Errorf("Detail is not base64")
	case len(detail) == 0:
		problem = fmt.Errorf("empty Detail")
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

	b := builder{"tar"}
	resp := b.el(nil, "SendTarificationResponse")
	resp.CreateAttr("xmlns:tar", NSTarification)
	st := b.el(resp, "Status")
	if problem != nil {
		b.el(st, "Code", "400")
		b.el(st, "Message", problem.Error())
		return okEnvelope(resp, OutcomeBusiness)
	}
	b.el(st, "Code", "200")
	b.el(st, "Message", "accepted")
	b.el(resp, "Reference", w.Key)
	return okEnvelope(resp, outcome)
}

func (p *Platform) isAccepted(key string) bool {
	p.wrMu.Lock()
	defer p.wrMu.Unlock()
	_, ok := p.writeKeys[key]
	return ok
}
