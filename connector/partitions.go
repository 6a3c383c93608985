package connector

import "sync"

// partitionTracker says whether a write partition has entries waiting in the outbox, so that
// Submit queues a write behind its own partition's queued writes (docs/outbox.md: order holds
// within a partition) while writes of other partitions go live.
//
// The outbox cannot list its pending messages, so the tracker counts them itself: +1 when a
// write is handed to Enqueue, -1 when replay delivered it or set it aside as a dead letter.
// It errs on the side of queueing: a count may stay too high (Enqueue silently drops a key
// that is already pending; an entry that fails authentication stays in place), and when the
// outbox holds writes the tracker did not see enqueued (left by a previous run, imported,
// requeued dead letters) every partition counts as pending. Both are corrected when the
// outbox is seen empty with no enqueue in flight: the counts are then exactly zero.
type partitionTracker struct {
	pending func() int // the outbox's pending count

	mu       sync.Mutex
	counts   map[string]int
	unknown  bool // the outbox holds writes of partitions not counted
	inflight int  // enqueues (or imports, requeues) under way
}

func newPartitionTracker(pending func() int) *partitionTracker {
	return &partitionTracker{pending: pending, counts: make(map[string]int), unknown: pending() > 0}
}

// syncEmptyLocked clears the counts when the outbox is empty and nothing is being added.
func (t *partitionTracker) syncEmptyLocked() {
	if t.inflight == 0 && (t.unknown || len(t.counts) > 0) && t.pending() == 0 {
		clear(t.counts)
		t.unknown = false
	}
}

// isPending reports whether partition p may have writes waiting in the outbox.
func (t *partitionTracker) isPending(p string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.syncEmptyLocked()
	return t.unknown || t.counts[p] > 0
}

// adding records that a write of partition p is being enqueued; done(err) must follow once
// Enqueue returned.
func (t *partitionTracker) adding(p string) (done func(err error)) {
	t.mu.Lock()
	t.counts[p]++
	t.inflight++
	t.mu.Unlock()
	return func(err error) {
		t.mu.Lock()
		t.inflight--
		if err != nil {
			t.decLocked(p)
		}
		t.mu.Unlock()
	}
}

// addingUnknown records that writes of unknown partitions are being added to the outbox
// (Import, Requeue); done must follow.
func (t *partitionTracker) addingUnknown() (done func()) {
	t.mu.Lock()
	t.unknown = true
	t.inflight++
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		t.inflight--
		t.mu.Unlock()
	}
}

// left records that a write of partition p left the outbox (delivered or dead-lettered).
func (t *partitionTracker) left(p string) {
	t.mu.Lock()
	t.decLocked(p)
	t.mu.Unlock()
}

// settle clears the counts if the outbox is empty (after a replay).
func (t *partitionTracker) settle() {
	t.mu.Lock()
	t.syncEmptyLocked()
	t.mu.Unlock()
}

func (t *partitionTracker) decLocked(p string) {
	if n := t.counts[p]; n > 1 {
		t.counts[p] = n - 1
	} else {
		delete(t.counts, p)
	}
}
