package bcp

import (
	"fmt"
	"sync"
	"time"
)

// EventKind is what an Event reports.
type EventKind int

const (
	// EventBreakerOpened: an endpoint's breaker opened (To is StateOpen or StateForcedOpen).
	EventBreakerOpened EventKind = iota
	// EventBreakerHalfOpen: an endpoint's cool-down ended; the next call probes it.
	EventBreakerHalfOpen
	// EventBreakerClosed: an endpoint's breaker closed (To is StateClosed or StateForcedClosed).
	EventBreakerClosed
	// EventFailedOver: a service answered from an endpoint of higher Order than before.
	EventFailedOver
	// EventFailedBack: a service answered from an endpoint of lower Order than
	// before, after the hold-down.
	EventFailedBack
)

var eventKindNames = [...]string{"breaker-opened", "breaker-half-open", "breaker-closed", "failed-over", "failed-back"}

// String returns the kind in kebab case, e.g. "failed-over".
func (k EventKind) String() string {
	if k >= 0 && int(k) < len(eventKindNames) {
		return eventKindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is a transition of an endpoint or a service.
type Event struct {
	Kind     EventKind
	Service  string   // UDDI key
	Endpoint Endpoint // the endpoint whose breaker moved, or the one now answering
	Previous Endpoint // EventFailedOver, EventFailedBack: the one answering before
	From, To State    // breaker events
	At       time.Time
}

// DefaultEventBuffer is the buffer of a subscription asked with buffer <= 0.
const DefaultEventBuffer = 64

// Subscribe returns a channel of transitions and a function that ends the
// subscription (and closes the channel). Sends never block: when the buffer is
// full the event is dropped and counted in Snapshot().DroppedEvents. Close
// ends every subscription.
//
// The stream is lossy by design (a slow subscriber must never slow calls
// down), and a burst of breaker transitions during an outage is exactly when
// a small buffer fills. A consumer that keeps state derived from events (the
// endpoint serving a service, whether it failed over: ServiceSnapshot.Serving
// and FailedOver) should treat an event as a wake-up and re-read Snapshot(),
// and re-read it too when Snapshot().DroppedEvents grows; events alone are
// for logs and displays.
func (e *Engine) Subscribe(buffer int) (<-chan Event, func()) {
	if buffer <= 0 {
		buffer = DefaultEventBuffer
	}
	ch := make(chan Event, buffer)
	e.subMu.Lock()
	if e.closed.Load() {
		e.subMu.Unlock()
		close(ch)
		return ch, func() {}
	}
	e.subs = append(e.subs, ch)
	e.subMu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			e.subMu.Lock()
			defer e.subMu.Unlock()
			for i, c := range e.subs {
				if c == ch {
					e.subs = append(e.subs[:i:i], e.subs[i+1:]...)
					close(ch)
					return
				}
			}
		})
	}
}

// publish offers ev to every subscriber without blocking. It runs on the call
// path (from served on a change of endpoint, from breakerChanged on a breaker
// transition), so it must stay cheap: subMu is held only for non-blocking
// sends, never while waiting on a subscriber, so neither Subscribe nor a slow
// consumer can stall a call. subMu is held at all so that an unsubscribe or
// Close cannot close a channel while it is being sent on.
func (e *Engine) publish(ev Event) {
	e.subMu.Lock()
	defer e.subMu.Unlock()
	for _, ch := range e.subs {
		select {
		case ch <- ev:
		default:
			e.dropped.Add(1)
		}
	}
}
