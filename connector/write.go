package connector

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/beevik/etree"
	"go.uber.org/zap"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/cache"
)

// MaxWritePayload bounds one write's body (the serialized element put in the SOAP Body); the
// outbox contract is docs/outbox.md.
const MaxWritePayload = 1 << 20

// Write is one message for the platform that must be delivered exactly once: any write
// operation of a service of the service list. The library does not look into Body beyond
// checking it is one XML element; SendMessage builds the Body of an eHealthBox message.
type Write struct {
	// Service is the short service-list name ("ehboxpublication:v3", "mycareneteattest:v3", …);
	// required.
	Service string
	// Action is the operation's SOAPAction as its WSDL gives it ("" when the WSDL gives none).
	Action string
	// Body is the element to put in the SOAP Body, as XML (one root element, at most
	// MaxWritePayload bytes). It is kept encrypted in the outbox until delivered.
	Body []byte
	// IdempotencyKey identifies the write; the receiving service deduplicates on it, so a
	// replay never delivers twice: the Body must carry it where the service's schema says (an
	// eHealthBox message's PublicationId). 1 to 64 characters of [A-Za-z0-9-_.:]; required.
	IdempotencyKey string
	// Partition groups writes that must be delivered in order (for example one patient's SSIN).
	// It is hashed before it leaves the process or reaches the disk. "" = a partition of its
	// own (no ordering with other writes).
	Partition string
}

// Receipt says what happened to a write.
type Receipt struct {
	Key string // the idempotency key
	// Delivered: the platform accepted the write during this call.
	Delivered bool
	// Queued: the platform could not be reached; the write is durable in the outbox and will be
	// replayed exactly once when the service is back.
	Queued bool
	// Reference is the platform's reference of the delivered write (an eHealthBox message's
	// SentPublicationId; the idempotency key for other services).
	Reference string
	Endpoint  string    // the URL that accepted it, when Delivered
	At        time.Time // when it was delivered or queued
}

func (w Write) normalize() (Write, error) {
	if w.Service == "" || len(w.Service) > 128 {
		return w, &RequestError{Field: "Write.Service", Reason: "must be a service of the service list"}
	}
	if len(w.Action) > 512 || strings.ContainsAny(w.Action, "\r\n\"") {
		return w, &RequestError{Field: "Write.Action", Reason: "at most 512 characters, no quote or line break"}
	}
	if w.IdempotencyKey == "" {
		return w, &RequestError{Field: "Write.IdempotencyKey", Reason: "required"}
	}
	if len(w.IdempotencyKey) > 64 {
		return w, &RequestError{Field: "Write.IdempotencyKey", Reason: "longer than 64 characters"}
	}
	for _, c := range w.IdempotencyKey {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return w, &RequestError{Field: "Write.IdempotencyKey", Reason: "only letters, digits and -_.: are allowed"}
		}
	}
	if len(w.Body) == 0 {
		return w, &RequestError{Field: "Write.Body", Reason: "empty"}
	}
	if len(w.Body) > MaxWritePayload {
		return w, &RequestError{Field: "Write.Body", Reason: "larger than 1 MiB"}
	}
	if _, err := parseWriteBody(w.Body); err != nil {
		return w, &RequestError{Field: "Write.Body", Reason: err.Error()}
	}
	return w, nil
}

// parseWriteBody reads a Write's Body: exactly one element, nothing but blanks, comments or
// an XML declaration around it.
func parseWriteBody(b []byte) (*etree.Element, error) {
	doc := etree.NewDocument()
	doc.ReadSettings.Permissive = false
	if err := doc.ReadFromBytes(b); err != nil {
		return nil, errors.New("not well-formed XML")
	}
	var root *etree.Element
	for _, t := range doc.Child {
		switch v := t.(type) {
		case *etree.Element:
			if root != nil {
				return nil, errors.New("more than one root element")
			}
			root = v
		case *etree.CharData:
			if !v.IsWhitespace() {
				return nil, errors.New("text outside the root element")
			}
		}
	}
	if root == nil {
		return nil, errors.New("no element")
	}
	return root, nil
}

// partitionHash is what leaves the process for a Partition: hex of a truncated SHA-256.
func partitionHash(p string) string {
	if p == "" {
		return ""
	}
	h := sha256.Sum256([]byte("ehgate-partition\x00" + p))
	return hex.EncodeToString(h[:16])
}

// writePayloadMagic starts the outbox payload of a write: the action, a line break, the body.
const writePayloadMagic = "ehgate-write/1\n"

func encodeWritePayload(action string, body []byte) []byte {
	out := make([]byte, 0, len(writePayloadMagic)+len(action)+1+len(body))
	out = append(out, writePayloadMagic...)
	out = append(out, action...)
	out = append(out, '\n')
	return append(out, body...)
}

// errWritePayload is the reason an outbox entry in another format is set aside.
var errWritePayload = errors.New("connector: queued write in an unknown format (written by an older version?)")

func decodeWritePayload(p []byte) (action string, body []byte, err error) {
	rest, ok := bytes.CutPrefix(p, []byte(writePayloadMagic))
	if !ok {
		return "", nil, errWritePayload
	}
	a, b, ok := bytes.Cut(rest, []byte{'\n'})
	if !ok {
		return "", nil, errWritePayload
	}
	return string(a), b, nil
}

// Submit delivers a write to any write service of the service list: live when the platform
// answers, otherwise durably queued in the encrypted outbox and replayed, exactly once thanks
// to its idempotency key, when the service is back. The Receipt says which. A business
// rejection is a *BusinessError and nothing is queued: for an eHealthBox message a Status
// other than 100 or 200; for another service an answer whose commons Status (the first child
// named Status) has a Code other than 100 or 200. While writes of the same Partition wait in
// the outbox, a new one queues behind them so the partition's order is kept; writes of other
// partitions still go live. In fallback mode every write queues. Safe for concurrent use.
func (c *Client) Submit(ctx context.Context, w Write) (Receipt, error) {
	w, err := w.normalize()
	if err != nil {
		return Receipt{}, err
	}
	return c.submit(ctx, w)
}

// submit runs a normalized write, seen by the observer.
func (c *Client) submit(ctx context.Context, w Write) (Receipt, error) {
	return observeCall(c, ctx, OperationSubmit, w.Service, func(ctx context.Context) (Receipt, error) {
		return c.submitWrite(ctx, w)
	}, func(r Receipt, err error) CallEnd {
		if err == nil && r.Queued {
			return CallEnd{Outcome: OutcomeQueued}
		}
		return CallEnd{Outcome: outcomeOf(SourceLive, err), Endpoint: r.Endpoint}
	})
}

// submitWrite delivers or queues a normalized write.
func (c *Client) submitWrite(ctx context.Context, w Write) (Receipt, error) {
	ctx, end, err := c.begin(ctx)
	if err != nil {
		return Receipt{Key: w.IdempotencyKey}, err
	}
	defer end()
	hashed := partitionHash(w.Partition)
	if hashed == "" {
		hashed = partitionHash("\x00key\x00" + w.IdempotencyKey) // its own partition: no ordering
	}
	m := cache.Message{IdempotencyKey: w.IdempotencyKey, Partition: hashed, Service: w.Service, Payload: encodeWritePayload(w.Action, w.Body)}
	if c.modes.forced(w.Service) || c.modes.isFallback(w.Service) || c.partitions.isPending(hashed) {
		return c.enqueue(ctx, m, nil)
	}
	sctx, cancel := context.WithTimeout(ctx, 2*c.cfg.Timeouts.Attempt)
	ref, ep, err := c.send(sctx, m)
	cancel()
	if e := c.ended(ctx); e != nil && err != nil {
		// The caller's cancel or Close: not queued (the outcome is unknown; submitting again
		// with the same IdempotencyKey delivers it at most once).
		return Receipt{Key: w.IdempotencyKey}, e
	}
	if err == nil {
		c.noteLive(w.Service)
		return Receipt{Key: w.IdempotencyKey, Delivered: true, Reference: ref, Endpoint: ep, At: c.clock.Now()}, nil
	}
	if !platformDown(err) {
		return Receipt{Key: w.IdempotencyKey}, err
	}
	c.noteFailure(w.Service, err)
	return c.enqueue(ctx, m, err)
}

// enqueue queues m durably; cause is the live failure that led here (nil in fallback mode).
func (c *Client) enqueue(ctx context.Context, m cache.Message, cause error) (Receipt, error) {
	if c.outbox == nil {
		if cause != nil {
			return Receipt{Key: m.IdempotencyKey}, fmt.Errorf("connector: %s: write neither delivered (%w) nor queued: %w", m.Service, cause, c.storeErr)
		}
		return Receipt{Key: m.IdempotencyKey}, fmt.Errorf("connector: %s: write not queued: %w", m.Service, c.storeErr)
	}
	done := c.partitions.adding(m.Partition)
	step := StepInfo{Kind: StepStoreWrite, Service: m.Service}
	sctx, start := c.stepStart(ctx, step)
	err := c.outbox.Enqueue(context.WithoutCancel(sctx), m)
	c.outboxCount.markStale()
	c.stepEnd(sctx, step, start, err)
	done(err)
	if err != nil {
		c.log.Error("connector: write could not be queued", zap.String("service", m.Service), zap.Error(err))
		if cause != nil {
			return Receipt{Key: m.IdempotencyKey}, fmt.Errorf("connector: %s: write neither delivered (%w) nor queued: %w", m.Service, cause, err)
		}
		return Receipt{Key: m.IdempotencyKey}, fmt.Errorf("connector: %s: write not queued: %w", m.Service, err)
	}
	c.log.Debug("connector: write queued", zap.String("service", m.Service))
	c.kickReplay()
	return Receipt{Key: m.IdempotencyKey, Queued: true, At: c.clock.Now()}, nil
}

// send delivers one write live and returns the platform's reference and the endpoint that
// accepted it.
func (c *Client) send(ctx context.Context, m cache.Message) (string, string, error) {
	action, raw, err := decodeWritePayload(m.Payload)
	if err != nil {
		return "", "", &RequestError{Field: "Write", Reason: err.Error()}
	}
	body, err := parseWriteBody(raw)
	if err != nil {
		return "", "", &RequestError{Field: "Write.Body", Reason: err.Error()}
	}
	parse := func(el *etree.Element) (string, error) { return parseWriteAnswer(el, m.Service, m.IdempotencyKey) }
	if m.Service == ServiceEHealthBox && action == ActionEHealthBoxSend {
		parse = func(el *etree.Element) (string, error) { return parseSendMessageResponse(el, m.IdempotencyKey) }
	}
	return liveCall(c, ctx, m.Service, action, body, true, parse)
}

// parseWriteAnswer reads the answer of a write to a service ehgate has no schema for: any
// element is an acceptance, unless its first child is a commons Status whose Code is neither
// 100 nor 200 (a *BusinessError). The reference is the idempotency key.
func parseWriteAnswer(el *etree.Element, service, key string) (string, error) {
	if el == nil {
		return "", &ResponseError{Service: service, Reason: "no answer element"}
	}
	kids := el.ChildElements()
	if len(kids) > 0 && kids[0].Tag == "Status" {
		if code := textAt(kids[0], "Code"); code != "" && code != "100" && code != "200" {
			return "", &BusinessError{Service: service, Code: truncateText(code, 16), Message: truncateText(textAt(kids[0], "Message"), 256)}
		}
	}
	return key, nil
}

// kickReplay asks the replay loop to look at the outbox.
func (c *Client) kickReplay() {
	select {
	case c.replayKick <- struct{}{}:
	default:
	}
}

// replayInterval is how often a non-empty outbox is tried again when nothing else kicks it.
const replayInterval = 5 * time.Second

// replayLoop replays the outbox when kicked (a service recovered, a write was queued) and
// every replayInterval while it holds writes, unless their service is in fallback mode.
func (c *Client) replayLoop() {
	c.kickReplay() // writes left by a previous run
	for {
		var tick <-chan struct{}
		var t bcp.Timer
		// With a shared store, other instances queue writes this one never hears of (and
		// may die with them): look at the shared outbox every replayInterval regardless.
		if c.outbox != nil && (c.cfg.StoreBackend != nil || c.outbox.Pending() > 0) {
			ch := make(chan struct{})
			t = c.clock.AfterFunc(replayInterval, func() { close(ch) })
			tick = ch
		}
		select {
		case <-c.ctx.Done():
		case <-c.replayKick:
		case <-tick:
		}
		if t != nil {
			t.Stop()
		}
		if c.ctx.Err() != nil {
			return
		}
		if c.modes.forced(ServiceEHealthBox) {
			continue // the network must not be tried; EndFallback or the feed kicks again
		}
		c.replay()
	}
}

// replay delivers the outbox now (one replay at a time) and publishes its progress.
func (c *Client) replay() {
	c.replayRun.Lock() // one replay at a time; a recovery waits for the one running
	defer c.replayRun.Unlock()
	if c.outbox == nil || c.outbox.Pending() == 0 {
		return
	}
	c.replayMu.Lock()
	c.replaying = true
	c.replayMu.Unlock()
	defer func() {
		c.replayMu.Lock()
		c.replaying = false
		c.replayMu.Unlock()
	}()
	var delivered, rejected atomic.Int64
	progress := func(done bool) {
		if delivered.Load()+rejected.Load() > 0 {
			c.outboxCount.markStale() // the outbox changed: Status counts it again
		}
		p := ReplayProgress{Delivered: int(delivered.Load()), Rejected: int(rejected.Load()), Pending: c.outbox.Pending(), Done: done}
		c.replayMu.Lock()
		c.lastReplay = p
		c.replayMu.Unlock()
		c.events.publish(Event{Kind: EventReplay, Service: ServiceEHealthBox, Cause: "replay", At: c.clock.Now(), Replay: &p})
	}
	progress(false)
	res, err := c.outbox.Replay(c.ctx, func(ctx context.Context, m cache.Message) error {
		if c.modes.forced(m.Service) {
			return fmt.Errorf("connector: %s: %w", m.Service, ErrFallback)
		}
		_, err := observeCall(c, ctx, OperationReplay, m.Service, func(ctx context.Context) ([2]string, error) {
			ref, ep, err := c.send(ctx, m)
			return [2]string{ref, ep}, err
		}, func(r [2]string, err error) CallEnd {
			return CallEnd{Outcome: outcomeOf(SourceLive, err), Endpoint: r[1]}
		})
		switch {
		case err == nil:
			c.partitions.left(m.Partition)
			delivered.Add(1)
			c.noteLive(m.Service)
			progress(false)
			return nil
		case errors.Is(err, ErrBusiness) || errors.Is(err, ErrRequest):
			rejected.Add(1)
			var be *BusinessError
			reason := err.Error()
			code := ""
			if errors.As(err, &be) {
				code = be.Code
				if be.Message != "" {
					reason += ": " + be.Message // kept encrypted with the dead letter, for the vendor
				}
			}
			c.log.Error("connector: queued write rejected by the platform, set aside",
				zap.String("service", m.Service), zap.String("code", code))
			c.partitions.left(m.Partition) // the outbox sets it aside
			return cache.Permanent(errors.New(reason))
		default:
			c.noteFailure(m.Service, err)
			return err
		}
	})
	c.partitions.settle()
	progress(true)
	c.log.Info("connector: outbox replayed", zap.Int("delivered", res.Delivered), zap.Int("dead_lettered", res.DeadLettered),
		zap.Int("retries", res.Retries), zap.Int("pending", c.outbox.Pending()), zap.Error(err))
}
