package connector

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/beevik/etree"
	"go.uber.org/zap"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/cache"
)

// The write service (MyCareNet tarification); the outbox contract is docs/outbox.md.
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
	// It is hashed before it leaves the process or reaches the disk. "" = a partition of its
	// own (no ordering with other writes).
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

// Submit delivers a write: live when the platform answers, otherwise durably queued in the
// encrypted outbox and replayed, exactly once thanks to its idempotency key, when the service
// is back. The Receipt says which. A business rejection (Status/Code 400) is a *BusinessError
// and nothing is queued. While writes of the same Partition wait in the outbox, a new one
// queues behind them so the partition's order is kept; writes of other partitions still go
// live. In fallback mode every write queues.
func (c *Client) Submit(ctx context.Context, w Write) (Receipt, error) {
	service := w.Service
	if service == "" {
		service = ServiceTarification
	}
	return observeCall(c, ctx, OperationSubmit, service, func(ctx context.Context) (Receipt, error) {
		return c.submit(ctx, w)
	}, func(r Receipt, err error) CallEnd {
		if err == nil && r.Queued {
			return CallEnd{Outcome: OutcomeQueued}
		}
		return CallEnd{Outcome: outcomeOf(SourceLive, err), Endpoint: r.Endpoint}
	})
}

// submit is Submit without the observer.
func (c *Client) submit(ctx context.Context, w Write) (Receipt, error) {
	w, err := w.normalize()
	if err != nil {
		return Receipt{}, err
	}
	ctx, end, err := c.begin(ctx)
	if err != nil {
		return Receipt{Key: w.IdempotencyKey}, err
	}
	defer end()
	hashed := partitionHash(w.Partition)
	if hashed == "" {
		hashed = partitionHash("\x00key\x00" + w.IdempotencyKey) // its own partition: no ordering
	}
	m := cache.Message{IdempotencyKey: w.IdempotencyKey, Partition: hashed, Service: w.Service, Payload: w.Payload}
	if c.modes.forced(w.Service) || c.modes.isFallback(w.Service) || c.partitions.isPending(hashed) {
		return c.enqueue(ctx, m, nil)
	}
	sctx, cancel := context.WithTimeout(ctx, 2*c.cfg.Timeouts.Attempt)
	ep, err := c.send(sctx, m)
	cancel()
	if e := c.ended(ctx); e != nil && err != nil {
		// The caller's cancel or Close: not queued (the outcome is unknown; submitting again
		// with the same IdempotencyKey delivers it at most once).
		return Receipt{Key: w.IdempotencyKey}, e
	}
	if err == nil {
		c.noteLive(w.Service)
		return Receipt{Key: w.IdempotencyKey, Delivered: true, Reference: w.IdempotencyKey, Endpoint: ep, At: c.clock.Now()}, nil
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

// send delivers one write live and returns the endpoint that accepted it.
func (c *Client) send(ctx context.Context, m cache.Message) (string, error) {
	w := Write{Service: m.Service, IdempotencyKey: m.IdempotencyKey, Payload: m.Payload}
	body := buildWriteRequest(w, m.Partition, c.origin)
	_, endpoint, err := liveCall(c, ctx, m.Service, ActionTarification, body, true, func(el *etree.Element) (string, error) {
		return parseWriteResponse(el, m.IdempotencyKey)
	})
	return endpoint, err
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
		if c.modes.forced(ServiceTarification) {
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
		p := ReplayProgress{Delivered: int(delivered.Load()), Rejected: int(rejected.Load()), Pending: c.outbox.Pending(), Done: done}
		c.replayMu.Lock()
		c.lastReplay = p
		c.replayMu.Unlock()
		c.events.publish(Event{Kind: EventReplay, Service: ServiceTarification, Cause: "replay", At: c.clock.Now(), Replay: &p})
	}
	progress(false)
	res, err := c.outbox.Replay(c.ctx, func(ctx context.Context, m cache.Message) error {
		if c.modes.forced(m.Service) {
			return fmt.Errorf("connector: %s: %w", m.Service, ErrFallback)
		}
		_, err := observeCall(c, ctx, OperationReplay, m.Service, func(ctx context.Context) (string, error) {
			return c.send(ctx, m)
		}, func(ep string, err error) CallEnd { return CallEnd{Outcome: outcomeOf(SourceLive, err), Endpoint: ep} })
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
