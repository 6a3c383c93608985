package sts

import (
	"sort"
	"sync"
	"time"

	"github.com/ehgate/ehgate/bcp"
)

// fakeClock is a bcp.Clock whose time moves only with Advance.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	changed chan struct{} // closed and replaced whenever a timer is added
}

type fakeTimer struct {
	c  *fakeClock
	at time.Time
	f  func()
}

func newFakeClock(t time.Time) *fakeClock {
	return &fakeClock{now: t, changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) bcp.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	if d <= 0 {
		go f()
		return t
	}
	c.timers = append(c.timers, t)
	close(c.changed)
	c.changed = make(chan struct{})
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	for i, x := range t.c.timers {
		if x == t {
			t.c.timers = append(t.c.timers[:i], t.c.timers[i+1:]...)
			return true
		}
	}
	return false
}

// Advance moves time by d and runs the timers that came due, in order, before it returns.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due, keep []*fakeTimer
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			due = append(due, t)
		} else {
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, t := range due {
		t.f()
	}
}

// Jump moves time by d without running timers, as the wall clock moves across a suspend of
// the machine while monotonic timers stand still.
func (c *fakeClock) Jump(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Pending returns when the pending timers fire, earliest first.
func (c *fakeClock) Pending() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]time.Time, 0, len(c.timers))
	for _, t := range c.timers {
		out = append(out, t.at)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// WaitTimer blocks until a timer set to fire at `at` is pending, or timeout passes (real
// time: it only bounds a wait for another goroutine to reach its timer).
func (c *fakeClock) WaitTimer(at time.Time, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		for _, t := range c.timers {
			if t.at.Equal(at) {
				c.mu.Unlock()
				return true
			}
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}

// WaitTimerIn blocks until a timer is pending strictly after from and before to, and returns
// the earliest such.
func (c *fakeClock) WaitTimerIn(from, to time.Time, timeout time.Duration) (time.Time, bool) {
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		var at time.Time
		for _, t := range c.timers {
			if t.at.After(from) && t.at.Before(to) && (at.IsZero() || t.at.Before(at)) {
				at = t.at
			}
		}
		ch := c.changed
		c.mu.Unlock()
		if !at.IsZero() {
			return at, true
		}
		select {
		case <-ch:
		case <-deadline:
			return time.Time{}, false
		}
	}
}
