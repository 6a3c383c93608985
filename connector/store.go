package connector

import (
	"context"
	"io"

	"go.uber.org/zap"

	"github.com/ehgate/ehgate/cache"
)

// Export writes every record of the local store (answers, queued writes, dead letters),
// decrypted, to w as JSON Lines (cache.Store.Export's format), for the data owner:
// reversibility and audit. The output holds personal data in clear: write it only where the
// data owner asked.
func (c *Client) Export(ctx context.Context, w io.Writer) (cache.ExportResult, error) {
	ctx, end, err := c.begin(ctx)
	if err != nil {
		return cache.ExportResult{}, err
	}
	defer end()
	if c.store == nil {
		return cache.ExportResult{}, c.storeErr
	}
	// Live answers are stored deferred (put): the export holds every answer given so far.
	if err := c.store.Flush(ctx); err != nil {
		return cache.ExportResult{}, err
	}
	return c.store.Export(ctx, w)
}

// Import reads an export made by Export (for example on a new machine) into the local store.
// Answers older than their retention are skipped by the store's rules.
func (c *Client) Import(ctx context.Context, r io.Reader) (cache.ExportResult, error) {
	ctx, end, err := c.begin(ctx)
	if err != nil {
		return cache.ExportResult{}, err
	}
	defer end()
	if c.store == nil {
		return cache.ExportResult{}, c.storeErr
	}
	done := c.partitions.addingUnknown() // imported writes: partitions not counted
	res, err := c.store.Import(ctx, r)
	done()
	c.statsCount.markStale() // Status counts again
	c.outboxCount.markStale()
	c.memo.clear() // imported answers may be newer than the decoded ones held
	c.kickReplay() // imported writes are delivered like any queued write
	return res, err
}

// Purge deletes now the stored answers past their retention (it also runs by itself every
// hour) and returns how many it deleted.
func (c *Client) Purge(ctx context.Context) (int, error) {
	ctx, end, err := c.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer end()
	if c.store == nil {
		return 0, c.storeErr
	}
	n, err := c.store.Purge(ctx)
	c.statsCount.markStale()
	c.memo.clear() // what left the disk leaves memory too
	return n, err
}

// Rekey rewrites every record encrypted under an older key of Config.CacheKeys under the
// first one; afterwards the older keys can be dropped from the configuration. It returns how
// many records it rewrote.
func (c *Client) Rekey(ctx context.Context) (int, error) {
	ctx, end, err := c.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer end()
	if c.store == nil {
		return 0, c.storeErr
	}
	return c.store.Rekey(ctx)
}

// DeadLetters returns the queued writes the platform rejected for a business reason, with the
// reason (docs/outbox.md). They hold the payloads: show them to the pharmacist, not to a log.
func (c *Client) DeadLetters(ctx context.Context) ([]cache.DeadLetter, error) {
	ctx, end, err := c.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	if c.store == nil {
		return nil, c.storeErr
	}
	return c.outbox.DeadLetters(ctx)
}

// Requeue puts a dead letter (by its Seq) back in the outbox, for example after the vendor
// corrected what the platform refused; it is replayed with the other queued writes.
func (c *Client) Requeue(ctx context.Context, seq uint64) error {
	ctx, end, err := c.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	if c.store == nil {
		return c.storeErr
	}
	done := c.partitions.addingUnknown() // the dead letter's partition is not at hand
	err = c.outbox.Requeue(ctx, seq)
	done()
	c.outboxCount.markStale()
	if err != nil {
		return err
	}
	c.kickReplay()
	return nil
}

// Discard deletes a dead letter (by its Seq) for good, for example once the vendor has dealt
// with what the platform refused in another way. The write is never sent.
func (c *Client) Discard(ctx context.Context, seq uint64) error {
	ctx, end, err := c.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	if c.store == nil {
		return c.storeErr
	}
	err = c.outbox.Discard(ctx, seq)
	c.outboxCount.markStale()
	if err != nil {
		return err
	}
	c.log.Info("connector: dead letter discarded", zap.Uint64("seq", seq))
	return nil
}
