package main

import (
	"fmt"
	"strings"

	"github.com/ehgate/ehgate/connector"
)

// live prints the client's events as they come: a line per mode change, failover, failback,
// status-feed change and regularisation, and a progress bar while the outbox is replayed.
type live struct {
	w      *world
	events <-chan connector.Event
	tty    bool
	// lastStep is the quarter of the replay last printed (when out is not a terminal).
	lastStep int
}

func newLive(w *world, events <-chan connector.Event) *live {
	return &live{w: w, events: events, tty: w.tty, lastStep: -1}
}

func (l *live) loop() {
	for ev := range l.events {
		l.show(ev)
	}
}

func (l *live) show(ev connector.Event) {
	w := l.w
	switch ev.Kind {
	case connector.EventModeChanged:
		w.linef("mode      %-26s %s → %s (%s)", ev.Service, ev.Previous, ev.Mode, ev.Cause)
	case connector.EventFailedOver:
		w.linef("failover  %-26s now served by %s", ev.Service, w.siteOf(ev.Endpoint))
	case connector.EventFailedBack:
		w.linef("failback  %-26s now served by %s", ev.Service, w.siteOf(ev.Endpoint))
	case connector.EventFeed:
		w.linef("status    %-26s status page says %q", ev.Service, ev.Cause)
	case connector.EventRegularisation:
		if r := ev.Regularisation; r != nil {
			w.regularised(*r)
			w.linef("recheck   %-26s %d answers served from the store asked again live: %d unchanged, %d changed, %d not checked",
				ev.Service, r.Checked, r.Unchanged, len(r.Changed), r.Failed)
		}
	case connector.EventReplay:
		if ev.Replay != nil {
			l.replay(*ev.Replay)
		}
	case connector.EventBreaker:
		if w.o.Verbose {
			w.linef("breaker   %-26s %s: %s", ev.Service, w.siteOf(ev.Endpoint), ev.Cause)
		}
	case connector.EventServiceList:
		w.linef("list      a newer signed service list is in force (issued %s)", ev.Cause)
	case connector.EventDrill:
		w.linef("drill     %-26s %s", ev.Service, ev.Cause)
	}
}

// replay draws the outbox's progress. Replays that deliver nothing (the platform is still
// down) are shown only with -v.
func (l *live) replay(p connector.ReplayProgress) {
	total := p.Delivered + p.Rejected + p.Pending
	if p.Delivered+p.Rejected == 0 {
		if l.w.o.Verbose && p.Done {
			l.w.linef("replay    outbox: nothing delivered, %d still queued", p.Pending)
		}
		return
	}
	bar := progressBar(p.Delivered+p.Rejected, total, 30)
	text := fmt.Sprintf("replay    outbox %s %d/%d delivered", bar, p.Delivered, total)
	if p.Rejected > 0 {
		text += fmt.Sprintf(", %d rejected", p.Rejected)
	}
	if l.tty {
		end := ""
		if p.Done {
			end = "\n"
		}
		fmt.Fprintf(l.w.out, "\r%s%s", stamp(l.w, text), end)
		return
	}
	// Not a terminal: a line at every quarter and at the end.
	step := 4 * (p.Delivered + p.Rejected) / max(total, 1)
	if step > l.lastStep || p.Done {
		l.lastStep = step
		l.w.linef("%s", text)
	}
	if p.Done {
		l.lastStep = -1
	}
}

func stamp(w *world, text string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%6.2fs  %s", sinceStart(w), text)
	return b.String()
}

// progressBar draws done/total in width cells.
func progressBar(done, total, width int) string {
	if total <= 0 {
		total = 1
	}
	n := done * width / total
	n = min(max(n, 0), width)
	return "[" + strings.Repeat("█", n) + strings.Repeat("·", width-n) + "]"
}
