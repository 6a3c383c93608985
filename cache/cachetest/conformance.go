// Package cachetest holds the conformance suite every storage of package
// cache passes: the default bbolt file and each cache.Backend (package
// pgstore). It drives a cache.Store through its public API only, so the same
// assertions hold whatever keeps the records.
package cachetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ehgate/ehgate/cache"
	"github.com/stretchr/testify/require"
)

// Harness opens Stores on the storage under test.
type Harness struct {
	// Open opens a Store with cfg (Tenant, Keys, Functions, Outbox set by the
	// suite), adding what the storage needs (Dir, or Backend).
	Open func(t *testing.T, cfg cache.Config, opts ...cache.Option) (*cache.Store, error)
	// Raw returns every byte the storage holds for tenant (the file, or the
	// database rows), to check that nothing is readable.
	Raw func(t *testing.T, tenant string) []byte
}

// Clock is an injected clock moved by hand.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at a fixed date.
func NewClock() *Clock { return &Clock{t: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Key returns a test key: 32 bytes of fill.
func Key(id string, fill byte) cache.Key {
	return cache.Key{ID: id, Secret: bytes.Repeat([]byte{fill}, 32)}
}

// Tenant returns a tenant name unique to this run.
func Tenant(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

const ssin = "85073003328"

var bg = context.Background()

func (h Harness) config(tenant string, keys ...cache.Key) cache.Config {
	if len(keys) == 0 {
		keys = []cache.Key{Key("k1", 1)}
	}
	return cache.Config{
		Tenant:        tenant,
		Keys:          keys,
		PurgeInterval: -1,
		Functions:     map[string]cache.Policy{"prescriptions": {Fresh: time.Hour, ServeStale: 24 * time.Hour, Retention: 48 * time.Hour}},
		Outbox:        cache.OutboxConfig{InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Concurrency: 4},
	}
}

func (h Harness) open(t *testing.T, cfg cache.Config, opts ...cache.Option) *cache.Store {
	t.Helper()
	st, err := h.Open(t, cfg, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// Run runs the conformance suite.
func Run(t *testing.T, h Harness) {
	t.Run("PutGetDelete", h.putGetDelete)
	t.Run("FreshStaleExpiredAndNotAfter", h.freshStaleExpired)
	t.Run("Purge", h.purge)
	t.Run("OutboxOrderRetriesDeadLetters", h.outbox)
	t.Run("ExportImport", h.exportImport)
	t.Run("RotationAndRekey", h.rotation)
	t.Run("UnknownKey", h.unknownKey)
	t.Run("NothingReadable", h.nothingReadable)
	t.Run("Stats", h.stats)
	t.Run("DeferredPut", h.deferredPut)
	t.Run("UpdateLosesNothing", h.update)
}

func (h Harness) putGetDelete(t *testing.T) {
	clk := NewClock()
	cfg := h.config(Tenant("pgd"))
	st := h.open(t, cfg, cache.WithClock(clk.Now))
	answer := []byte("<InsurabilityResponse>regime=elevated</InsurabilityResponse>")
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, ssin, answer))
	clk.Advance(10 * time.Minute)
	e, err := st.Get(bg, cache.FunctionInsurability, ssin)
	require.NoError(t, err)
	require.Equal(t, answer, e.Value)
	require.Equal(t, 10*time.Minute, e.Age)
	require.True(t, e.Fresh)
	require.NoError(t, st.Close())

	st = h.open(t, cfg, cache.WithClock(clk.Now))
	e, err = st.Get(bg, cache.FunctionInsurability, ssin)
	require.NoError(t, err, "an answer survives a reopen")
	require.Equal(t, answer, e.Value)
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, ssin, []byte("newer")))
	e, err = st.Get(bg, cache.FunctionInsurability, ssin)
	require.NoError(t, err)
	require.Equal(t, []byte("newer"), e.Value, "Put replaces")
	_, err = st.Get(bg, cache.FunctionInsurability, "00000000000")
	require.ErrorIs(t, err, cache.ErrNotFound)
	_, err = st.Get(bg, "nope", ssin)
	require.ErrorIs(t, err, cache.ErrUnknownFunction)
	require.ErrorIs(t, st.Put(bg, cache.FunctionInsurability, "", answer), cache.ErrInvalid)
	require.NoError(t, st.Delete(bg, cache.FunctionInsurability, ssin))
	_, err = st.Get(bg, cache.FunctionInsurability, ssin)
	require.ErrorIs(t, err, cache.ErrNotFound)
	require.NoError(t, st.Close())
	_, err = st.Get(bg, cache.FunctionInsurability, ssin)
	require.ErrorIs(t, err, cache.ErrClosed)
}

func (h Harness) freshStaleExpired(t *testing.T) {
	clk := NewClock()
	st := h.open(t, h.config(Tenant("fse")), cache.WithClock(clk.Now))
	require.NoError(t, st.Put(bg, "prescriptions", "rx-1", []byte("v")))
	require.NoError(t, st.Put(bg, "prescriptions", "rx-2", []byte("w"), cache.NotAfter(clk.Now().Add(2*time.Hour))))
	clk.Advance(61 * time.Minute)
	e, err := st.Get(bg, "prescriptions", "rx-1")
	require.NoError(t, err)
	require.False(t, e.Fresh, "past Fresh: stale but served")
	clk.Advance(time.Hour)
	_, err = st.Get(bg, "prescriptions", "rx-2")
	var ee *cache.ExpiredError
	require.ErrorAs(t, err, &ee)
	require.True(t, ee.NotAfter, "NotAfter ends serving before the policy")
	clk.Advance(22 * time.Hour)
	_, err = st.Get(bg, "prescriptions", "rx-1")
	require.ErrorIs(t, err, cache.ErrExpired)
	require.ErrorIs(t, st.Put(bg, "prescriptions", "rx-3", []byte("x"), cache.NotAfter(clk.Now())), cache.ErrExpired)
}

func (h Harness) purge(t *testing.T) {
	clk := NewClock()
	st := h.open(t, h.config(Tenant("purge")), cache.WithClock(clk.Now))
	require.NoError(t, st.Put(bg, "prescriptions", "old", []byte("v")))
	clk.Advance(47 * time.Hour)
	require.NoError(t, st.Put(bg, "prescriptions", "young", []byte("v")))
	require.NoError(t, st.Put(bg, "prescriptions", "capped", []byte("v"), cache.NotAfter(clk.Now().Add(time.Hour))))
	clk.Advance(2 * time.Hour)
	n, err := st.Purge(bg)
	require.NoError(t, err)
	require.Equal(t, 2, n, "the answer past Retention and the one past NotAfter")
	_, err = st.Get(bg, "prescriptions", "old")
	require.ErrorIs(t, err, cache.ErrNotFound)
	_, err = st.Get(bg, "prescriptions", "young")
	require.NoError(t, err)
}

func (h Harness) outbox(t *testing.T) {
	clk := NewClock()
	st := h.open(t, h.config(Tenant("outbox")), cache.WithClock(clk.Now))
	ob := st.Outbox()
	for i := range 12 {
		part := []string{"patient-a", "patient-b", "patient-c"}[i%3]
		require.NoError(t, ob.Enqueue(bg, cache.Message{IdempotencyKey: fmt.Sprintf("ref-%02d", i), Partition: part, Service: "svc", Payload: []byte(fmt.Sprint(i))}))
	}
	require.NoError(t, ob.Enqueue(bg, cache.Message{IdempotencyKey: "ref-03", Partition: "patient-a", Service: "svc", Payload: []byte("dup")}))
	require.Equal(t, 12, ob.Pending(), "an idempotency key already pending adds nothing")
	clk.Advance(time.Minute)
	require.Equal(t, time.Minute, ob.OldestAge())

	var mu sync.Mutex
	got := map[string][]string{}
	fails := map[string]int{}
	res, err := ob.Replay(bg, func(_ context.Context, m cache.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if m.IdempotencyKey == "ref-04" && fails[m.IdempotencyKey] < 2 {
			fails[m.IdempotencyKey]++
			return errors.New("503")
		}
		if m.IdempotencyKey == "ref-07" {
			return cache.Permanent(errors.New("rejected: code 42"))
		}
		got[m.Partition] = append(got[m.Partition], m.IdempotencyKey)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, cache.ReplayResult{Delivered: 11, DeadLettered: 1, Retries: 2}, res)
	require.Equal(t, []string{"ref-00", "ref-03", "ref-06", "ref-09"}, got["patient-a"])
	require.Equal(t, []string{"ref-01", "ref-04", "ref-10"}, got["patient-b"], "order kept through retries and a dead letter")
	require.Equal(t, []string{"ref-02", "ref-05", "ref-08", "ref-11"}, got["patient-c"])
	require.Equal(t, 0, ob.Pending())
	require.Equal(t, time.Duration(0), ob.OldestAge())

	dl, err := ob.DeadLetters(bg)
	require.NoError(t, err)
	require.Len(t, dl, 1)
	require.Equal(t, "ref-07", dl[0].IdempotencyKey)
	require.Equal(t, []byte("7"), dl[0].Payload)
	require.Equal(t, 1, dl[0].Attempts)
	require.Contains(t, dl[0].Reason, "code 42")
	require.Equal(t, 1, ob.DeadLetterCount())

	require.NoError(t, ob.Requeue(bg, dl[0].Seq))
	require.Equal(t, 1, ob.Pending())
	require.Equal(t, 0, ob.DeadLetterCount())
	res, err = ob.Replay(bg, func(context.Context, cache.Message) error { return cache.Permanent(errors.New("again")) })
	require.NoError(t, err)
	require.Equal(t, 1, res.DeadLettered)
	dl, err = ob.DeadLetters(bg)
	require.NoError(t, err)
	require.Len(t, dl, 1)
	require.NoError(t, ob.Discard(bg, dl[0].Seq))
	require.ErrorIs(t, ob.Discard(bg, dl[0].Seq), cache.ErrNotFound)
	require.Equal(t, 0, ob.DeadLetterCount())

	// Delivered keys may be queued again.
	require.NoError(t, ob.Enqueue(bg, cache.Message{IdempotencyKey: "ref-00", Service: "svc", Payload: []byte("again")}))
	require.Equal(t, 1, ob.Pending())
	// MaxElapsed: a head that keeps failing gives up with an error.
	cfg := h.config(Tenant("giveup"))
	cfg.Outbox.MaxElapsed = 20 * time.Millisecond
	st2 := h.open(t, cfg)
	require.NoError(t, st2.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: "x", Service: "svc", Payload: []byte("p")}))
	_, err = st2.Outbox().Replay(bg, func(context.Context, cache.Message) error { return errors.New("down") })
	require.ErrorContains(t, err, "gave up")
	require.Equal(t, 1, st2.Outbox().Pending(), "a message that was not delivered stays queued")
	require.ErrorIs(t, st2.Outbox().Enqueue(bg, cache.Message{Service: "svc"}), cache.ErrInvalid)
}

func (h Harness) exportImport(t *testing.T) {
	clk := NewClock()
	st := h.open(t, h.config(Tenant("export")), cache.WithClock(clk.Now))
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, ssin, []byte("ins")))
	require.NoError(t, st.Put(bg, "prescriptions", "rx", []byte("rx"), cache.NotAfter(clk.Now().Add(time.Hour))))
	ob := st.Outbox()
	require.NoError(t, ob.Enqueue(bg, cache.Message{IdempotencyKey: "w1", Partition: "p", Service: "svc", Payload: []byte("one")}))
	require.NoError(t, ob.Enqueue(bg, cache.Message{IdempotencyKey: "w2", Partition: "p", Service: "svc", Payload: []byte("two")}))
	require.NoError(t, ob.Enqueue(bg, cache.Message{IdempotencyKey: "w3", Partition: "q", Service: "svc", Payload: []byte("dead")}))
	ctx, cancel := context.WithTimeout(bg, 300*time.Millisecond)
	_, err := ob.Replay(ctx, func(_ context.Context, m cache.Message) error {
		if m.IdempotencyKey == "w3" {
			return cache.Permanent(errors.New("no"))
		}
		return errors.New("down")
	})
	cancel()
	require.Error(t, err) // w1 keeps failing until the context ends
	var buf bytes.Buffer
	res, err := st.Export(bg, &buf)
	require.NoError(t, err)
	require.Equal(t, cache.ExportResult{Answers: 2, Outbox: 2, DeadLetters: 1}, res)
	out := buf.String()
	require.Contains(t, out, `"key":"`+ssin+`"`)
	require.Less(t, strings.Index(out, `"idempotency_key":"w1"`), strings.Index(out, `"idempotency_key":"w2"`), "outbox lines in delivery order")

	other := h.open(t, h.config(Tenant("import"), Key("k9", 9)), cache.WithClock(clk.Now))
	res, err = other.Import(bg, bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	require.Equal(t, cache.ExportResult{Answers: 2, Outbox: 2, DeadLetters: 1}, res)
	e, err := other.Get(bg, cache.FunctionInsurability, ssin)
	require.NoError(t, err)
	require.Equal(t, []byte("ins"), e.Value)
	var got []string
	_, err = other.Outbox().Replay(bg, func(_ context.Context, m cache.Message) error {
		got = append(got, string(m.Payload))
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{"one", "two"}, got)
	dl, err := other.Outbox().DeadLetters(bg)
	require.NoError(t, err)
	require.Len(t, dl, 1)
	require.Equal(t, []byte("dead"), dl[0].Payload)
	res, err = other.Import(bg, bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	require.Equal(t, cache.ExportResult{Answers: 2, Outbox: 2, DeadLetters: 1}, res, "answers as old as the stored ones are rewritten; delivered messages are queued again")
	clk.Advance(time.Minute)
	require.NoError(t, other.Put(bg, cache.FunctionInsurability, ssin, []byte("newer")))
	res, err = other.Import(bg, bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	require.Equal(t, 2+1, res.Skipped, "an answer older than the stored one, and the two messages still queued")
	e, err = other.Get(bg, cache.FunctionInsurability, ssin)
	require.NoError(t, err)
	require.Equal(t, []byte("newer"), e.Value)
	_, err = other.Import(bg, strings.NewReader(`{"type":"header","format":"ehgate-cache-export","version":1}`+"\n"))
	require.ErrorIs(t, err, errUnexpectedEOF)
}

func (h Harness) rotation(t *testing.T) {
	clk := NewClock()
	tenant := Tenant("rotate")
	k1, k2 := Key("k1", 1), Key("k2", 2)
	st := h.open(t, h.config(tenant, k1), cache.WithClock(clk.Now))
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, ssin, []byte("under k1")))
	require.NoError(t, st.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: "w", Service: "svc", Payload: []byte("queued under k1")}))
	require.NoError(t, st.Close())

	st = h.open(t, h.config(tenant, k2, k1), cache.WithClock(clk.Now))
	e, err := st.Get(bg, cache.FunctionInsurability, ssin)
	require.NoError(t, err, "old records stay readable while the old key is listed")
	require.Equal(t, []byte("under k1"), e.Value)
	require.NoError(t, st.Put(bg, "prescriptions", "rx", []byte("under k2")))
	n, err := st.Rekey(bg)
	require.NoError(t, err)
	require.Equal(t, 2, n, "the k1 answer and the k1 queued message")
	require.NoError(t, st.Close())

	st = h.open(t, h.config(tenant, k2), cache.WithClock(clk.Now))
	e, err = st.Get(bg, cache.FunctionInsurability, ssin)
	require.NoError(t, err, "after Rekey the old key can be retired")
	require.Equal(t, []byte("under k1"), e.Value)
	var got []string
	_, err = st.Outbox().Replay(bg, func(_ context.Context, m cache.Message) error {
		got = append(got, string(m.Payload))
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{"queued under k1"}, got)
	require.NoError(t, st.Close())
	_, err = h.Open(t, h.config(tenant, k1))
	require.ErrorIs(t, err, cache.ErrUnknownKey, "k1 was forgotten by Rekey")
}

func (h Harness) unknownKey(t *testing.T) {
	tenant := Tenant("unknown")
	st := h.open(t, h.config(tenant, Key("k1", 1)))
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, ssin, []byte("v")))
	require.NoError(t, st.Close())
	_, err := h.Open(t, h.config(tenant, Key("k3", 3)))
	require.ErrorIs(t, err, cache.ErrUnknownKey)
	_, err = h.Open(t, h.config(tenant, Key("k1", 7)))
	require.ErrorIs(t, err, cache.ErrUnknownKey, "same ID, other secret")
}

func (h Harness) nothingReadable(t *testing.T) {
	tenant := Tenant("secret")
	st := h.open(t, h.config(tenant))
	answer := []byte("Jan Peeters, regime preferential, holder 85073003328")
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, ssin, answer))
	require.NoError(t, st.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: "invoice-" + ssin, Partition: "patient-" + ssin, Service: "svc", Payload: []byte("tarification of Jan Peeters")}))
	raw := h.Raw(t, tenant)
	require.NotEmpty(t, raw)
	for _, s := range []string{ssin, "Peeters", "preferential", "tarification", "invoice-"} {
		require.NotContains(t, string(raw), s)
	}
}

func (h Harness) stats(t *testing.T) {
	clk := NewClock()
	st := h.open(t, h.config(Tenant("stats")), cache.WithClock(clk.Now))
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, "a", []byte("1")))
	clk.Advance(2 * time.Hour)
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, "b", []byte("2")))
	require.NoError(t, st.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: "w", Service: "svc", Payload: []byte("p")}))
	s, err := st.Stats(bg)
	require.NoError(t, err)
	fs := s.Functions[cache.FunctionInsurability]
	require.Equal(t, 2, fs.Count)
	require.Equal(t, 2, fs.Servable)
	require.Equal(t, 1, fs.Fresh)
	require.Equal(t, 2*time.Hour, fs.Oldest)
	require.Equal(t, 1, s.Outbox.Pending)
	require.Positive(t, s.Outbox.Bytes)
}

var errUnexpectedEOF = io.ErrUnexpectedEOF

// deferredPut: a Put with cache.Deferred is served at once, waits (counted
// in Stats.DeferredPending) until Flush, is there after a reopen; a Delete
// after it wins, and Close commits what still waits.
func (h Harness) deferredPut(t *testing.T) {
	cfg := h.config(Tenant("deferred"))
	cfg.DeferredFlush = time.Hour // only Flush and Close commit: nothing here depends on timing
	st := h.open(t, cfg)
	fn := cache.FunctionInsurability
	require.NoError(t, st.Put(bg, fn, ssin, []byte("deferred answer"), cache.Deferred()))
	e, err := st.Get(bg, fn, ssin)
	require.NoError(t, err, "served before its commit")
	require.Equal(t, []byte("deferred answer"), e.Value)
	s, err := st.Stats(bg)
	require.NoError(t, err)
	require.Equal(t, 1, s.DeferredPending)
	require.NoError(t, st.Flush(bg))
	s, err = st.Stats(bg)
	require.NoError(t, err)
	require.Zero(t, s.DeferredPending)

	require.NoError(t, st.Put(bg, fn, "gone", []byte("x"), cache.Deferred()))
	require.NoError(t, st.Delete(bg, fn, "gone"))
	require.NoError(t, st.Put(bg, fn, "at-close", []byte("y"), cache.Deferred()))
	require.NoError(t, st.Close())

	st = h.open(t, cfg)
	e, err = st.Get(bg, fn, ssin)
	require.NoError(t, err)
	require.Equal(t, []byte("deferred answer"), e.Value)
	_, err = st.Get(bg, fn, "gone")
	require.ErrorIs(t, err, cache.ErrNotFound)
	e, err = st.Get(bg, fn, "at-close")
	require.NoError(t, err, "Close committed it")
	require.Equal(t, []byte("y"), e.Value)
	s, err = st.Stats(bg)
	require.NoError(t, err)
	require.Zero(t, s.DeferredFailed)
}

// update: concurrent Updates of one record each see the value the previous
// one wrote (none is lost), a Get after an Update sees it (the memory cache
// follows), an error of fn writes nothing, and the value survives a reopen.
func (h Harness) update(t *testing.T) {
	cfg := h.config(Tenant("update"))
	cfg.DeferredFlush = time.Hour
	st := h.open(t, cfg)
	fn := cache.FunctionInsurability
	count := func(old []byte) ([]byte, error) {
		n := 0
		if old != nil {
			var err error
			if n, err = strconv.Atoi(string(old)); err != nil {
				return nil, err
			}
		}
		return strconv.AppendInt(nil, int64(n+1), 10), nil
	}
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				errs <- st.Update(bg, fn, "counter", count)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	e, err := st.Get(bg, fn, "counter")
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(writers*each), string(e.Value), "no update lost")

	boom := errors.New("refused")
	require.ErrorIs(t, st.Update(bg, fn, "counter", func([]byte) ([]byte, error) { return nil, boom }), boom)
	e, err = st.Get(bg, fn, "counter")
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(writers*each), string(e.Value), "an error of fn writes nothing")

	// Over a Put, and over a deferred Put still waiting: Update starts from them.
	require.NoError(t, st.Put(bg, fn, ssin, []byte("41")))
	_, err = st.Get(bg, fn, ssin) // in the memory cache of a file
	require.NoError(t, err)
	require.NoError(t, st.Update(bg, fn, ssin, count))
	e, err = st.Get(bg, fn, ssin)
	require.NoError(t, err)
	require.Equal(t, "42", string(e.Value), "a Get after an Update sees it")
	require.NoError(t, st.Put(bg, fn, "waiting", []byte("6"), cache.Deferred()))
	require.NoError(t, st.Update(bg, fn, "waiting", count))
	e, err = st.Get(bg, fn, "waiting")
	require.NoError(t, err)
	require.Equal(t, "7", string(e.Value))

	require.ErrorIs(t, st.Update(bg, fn, "", count), cache.ErrInvalid)
	require.ErrorIs(t, st.Update(bg, "nope", "x", count), cache.ErrUnknownFunction)
	require.ErrorIs(t, st.Update(bg, fn, "big", func([]byte) ([]byte, error) {
		return make([]byte, cache.DefaultMaxValueBytes+1), nil
	}), cache.ErrTooLarge)
	_, err = st.Get(bg, fn, "big")
	require.ErrorIs(t, err, cache.ErrNotFound, "nothing but a seed was written, which no Get serves")

	require.NoError(t, st.Close())
	require.ErrorIs(t, st.Update(bg, fn, "counter", count), cache.ErrClosed)
	st = h.open(t, cfg)
	e, err = st.Get(bg, fn, "counter")
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(writers*each), string(e.Value), "survives a reopen")
}
