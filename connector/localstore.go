package connector

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/ehgate/ehgate/cache"
)

// DamagedStore says what New does with a store file it finds damaged (truncated, garbled).
// A file encrypted under keys the configuration does not hold is never touched, whatever
// this says: the right key may come back with the next start.
type DamagedStore int

const (
	// DamagedStoreStartFresh moves the damaged file aside (renamed with a timestamp, kept for
	// the data owner) and starts a fresh, empty store: fallback works again from the next
	// live answer. The default.
	DamagedStoreStartFresh DamagedStore = iota
	// DamagedStoreLeave leaves the damaged file where it is and runs without a store until
	// someone repairs it: live calls only.
	DamagedStoreLeave
)

// String returns "start-fresh" or "leave".
func (d DamagedStore) String() string {
	switch d {
	case DamagedStoreStartFresh:
		return "start-fresh"
	case DamagedStoreLeave:
		return "leave"
	}
	return fmt.Sprintf("DamagedStore(%d)", int(d))
}

// ErrNoStore says the client runs without its local store (it could not be opened): live
// calls work, but there is no stored answer, no outbox and nothing persisted. The error that
// wraps it says why; Status().Store too.
var ErrNoStore = errors.New("connector: no local store")

// StoreStatus is the local store's state.
type StoreStatus struct {
	// Available is false when the client runs without its store (see Reason).
	Available bool
	// Reason says why the store is not available, or what was done to make it so (a damaged
	// file moved aside); "" when it opened as it was.
	Reason string
	// MovedTo is where a damaged store file was moved ("" = not moved).
	MovedTo string
}

// openStore opens the local store with availability first: a store that cannot be opened
// never stops the client. A damaged file is moved aside and a fresh store started, or left
// alone (Config.DamagedStore); a file under an unknown key, a locked file or an unreachable
// backend is left alone. Without a store the client serves live calls only; the reason is
// logged once, at error, and shown in Status.
func (c *Client) openStore(scfg cache.Config) {
	scfg.OnCorrupt = cache.CorruptFail // decided here: an unknown key must never be moved
	s, err := cache.Open(scfg, cache.WithClock(c.clock.Now), cache.WithLogger(c.log))
	if err != nil && errors.Is(err, cache.ErrCorrupt) && !errors.Is(err, cache.ErrUnknownKey) &&
		c.cfg.DamagedStore == DamagedStoreStartFresh && scfg.Backend == nil {
		scfg.OnCorrupt = cache.CorruptStartFresh
		if s, err = cache.Open(scfg, cache.WithClock(c.clock.Now), cache.WithLogger(c.log)); err == nil {
			if fe := s.Recovered(); fe != nil {
				c.storeStatus = StoreStatus{Available: true, MovedTo: fe.MovedTo,
					Reason: "the damaged store file was moved aside and a fresh store started: " + fe.Err.Error()}
				c.log.Error("connector: local store damaged; moved aside, a fresh store started (answers stored before are not served)",
					zap.String("moved_to", fe.MovedTo), zap.Error(fe.Err))
			}
		}
	}
	if err != nil {
		c.storeErr = fmt.Errorf("%w: %w", ErrNoStore, err)
		c.storeStatus = StoreStatus{Reason: err.Error()}
		c.log.Error("connector: local store unusable, left as it is; live calls only (no stored answers, no outbox) until it is repaired",
			zap.Error(err))
		return
	}
	c.store = s
	if c.storeStatus.Reason == "" {
		c.storeStatus = StoreStatus{Available: true}
	}
}
