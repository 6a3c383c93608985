package connector

import (
	"sync"
	"sync/atomic"
)

// callGate counts the callers' calls in flight without a lock, so that many callers
// answered from memory at once do not meet on a mutex: shut refuses new calls, wait returns
// once the calls let in before have ended. The zero value is not usable: see newCallGate.
type callGate struct {
	state   atomic.Uint64 // gateShut bit | calls in flight
	once    sync.Once
	drained chan struct{} // closed when shut and no call is in flight
}

const gateShut = 1 << 63

func newCallGate() *callGate { return &callGate{drained: make(chan struct{})} }

// enter lets a call in; false once the gate is shut.
func (g *callGate) enter() bool {
	if g.state.Load()&gateShut != 0 {
		return false
	}
	if g.state.Add(1)&gateShut != 0 { // shut between the two reads
		g.exit()
		return false
	}
	return true
}

// exit ends a call let in by enter.
func (g *callGate) exit() {
	if g.state.Add(^uint64(0)) == gateShut {
		g.once.Do(func() { close(g.drained) })
	}
}

// shut refuses every later call.
func (g *callGate) shut() {
	if g.state.Or(gateShut) == 0 {
		g.once.Do(func() { close(g.drained) })
	}
}

// wait returns when the gate is shut and the calls let in have all ended.
func (g *callGate) wait() { <-g.drained }
