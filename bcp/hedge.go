package bcp

import (
	"context"
)

type hedgeResult struct {
	pk  pick
	err error
	o   Outcome
}

// hedgedPass is pass for a hedging service: when the attempt in flight has not
// answered after the hedge delay, the next endpoint is asked too; the first
// good answer wins and the other attempt's context is cancelled (its outcome
// is then Ignore: the breaker does not hold our impatience against it). A
// failure starts the next endpoint at once.
func (e *Engine) hedgedPass(ctx context.Context, r *route, pass int, attempt func(context.Context, Endpoint) error, atts *[]AttemptError) (error, bool) {
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan hedgeResult, len(r.active)+1)
	hedge := make(chan struct{}, 1)
	var now int64
	var deferred uint64
	start, inflight, tried := 0, 0, false
	relaxed := false

	launch := func() bool {
		for {
			pk, ok := e.next(r, start, pass, &now, relaxed, &deferred, atts)
			if !ok && !relaxed && deferred != 0 {
				relaxed, start = true, 0
				continue
			}
			if !ok && !tried && pass == 0 {
				pk, ok = e.panicPick(r, &now)
			}
			if !ok {
				return false
			}
			start = pk.i + 1
			tried = true
			inflight++
			re := r.active[pk.i]
			go func() {
				err := e.invoke(hctx, r.policy.attemptTimeout, re.ep, attempt)
				o := Success
				if err != nil {
					if hctx.Err() != nil && ctx.Err() == nil {
						o = Ignore // cancelled by us: the other attempt won
					} else {
						o = e.outcome(ctx, err)
					}
				}
				e.book(r, pk, o, err)
				results <- hedgeResult{pk: pk, err: err, o: o}
			}()
			return true
		}
	}

	if !launch() {
		return nil, false
	}
	timer := e.clock.AfterFunc(r.policy.hedgeDelay, func() { hedge <- struct{}{} })
	defer timer.Stop()
	for {
		select {
		case <-hedge:
			// A hedge is extra load like a retry: it draws from the same budget.
			if inflight == 1 && start < len(r.active) && e.budget.withdraw(e.now()) {
				launch()
			}
		case res := <-results:
			inflight--
			switch res.o {
			case Failure:
				*atts = append(*atts, AttemptError{Endpoint: r.active[res.pk.i].ep, Err: res.err})
				if ctx.Err() != nil {
					return nil, false
				}
				if inflight == 0 && !launch() {
					return nil, false
				}
			case Ignore:
				if hctx.Err() != nil && ctx.Err() == nil {
					continue // a loser we cancelled; cannot happen before we return
				}
				return res.err, true
			default:
				return res.err, true
			}
		case <-ctx.Done():
			return ctx.Err(), true
		}
	}
}
