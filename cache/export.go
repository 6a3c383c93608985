package cache

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// ExportFormat is the "format" of an export's header line.
const ExportFormat = "ehgate-cache-export"

// exportLine is one line of an export. Which fields are set depends on Type.
type exportLine struct {
	Type string `json:"type"`
	// header
	Format     string     `json:"format,omitempty"`
	Version    int        `json:"version,omitempty"`
	Tenant     string     `json:"tenant,omitempty"`
	ExportedAt *time.Time `json:"exported_at,omitempty"`
	// answer
	Function string     `json:"function,omitempty"`
	Key      string     `json:"key,omitempty"`
	Value    []byte     `json:"value,omitempty"`
	StoredAt *time.Time `json:"stored_at,omitempty"`
	NotAfter *time.Time `json:"not_after,omitempty"`
	// outbox and dead_letter
	Seq            uint64     `json:"seq,omitempty"`
	IdempotencyKey string     `json:"idempotency_key,omitempty"`
	Partition      *string    `json:"partition,omitempty"`
	Service        string     `json:"service,omitempty"`
	Payload        []byte     `json:"payload,omitempty"`
	EnqueuedAt     *time.Time `json:"enqueued_at,omitempty"`
	Attempts       int        `json:"attempts,omitempty"`
	Reason         string     `json:"reason,omitempty"`
	DeadAt         *time.Time `json:"dead_at,omitempty"`
	// end
	Answers     *int `json:"answers,omitempty"`
	Outbox      *int `json:"outbox,omitempty"`
	DeadLetters *int `json:"dead_letters,omitempty"`
	Skipped     *int `json:"skipped,omitempty"`
}

// ExportResult counts what Export wrote or Import read.
type ExportResult struct {
	Answers     int
	Outbox      int
	DeadLetters int
	// Skipped counts records that failed authentication (Export) or answers
	// older than the one already stored and outbox messages already pending
	// (Import).
	Skipped int
}

// Export writes every record of the store, decrypted, to w as JSON Lines
// (one JSON object per line, UTF-8), for the data owner (reversibility,
// audit). Records that fail authentication are left out and counted.
//
// Export is not one snapshot: it reads the file in batches of a few hundred
// records, each in its own short read transaction, and writes a batch to w
// only after that transaction has ended, so a slow or blocked w never holds
// up the Store's writes. Every record is exported as it was at some moment
// of the export; a record written, replaced or deleted while it runs may or
// may not be in it, and a queued write moved to the dead letters while it
// runs may appear both as "outbox" and as "dead_letter" (it is never missing
// from both). Export when the store is quiet for an exact picture. The lines,
// by "type":
//
//	{"type":"header","format":"ehgate-cache-export","version":1,"tenant":"pharmacy-1","exported_at":"2026-11-23T09:00:00Z"}
//	{"type":"answer","function":"insurability","key":"85073003328","value":"<base64>","stored_at":"<RFC 3339>","not_after":"<RFC 3339, only if set>"}
//	{"type":"outbox","seq":7,"idempotency_key":"ref-1","partition":"p","service":"mycarenettarification:v1","payload":"<base64>","enqueued_at":"<RFC 3339>"}
//	{"type":"dead_letter", the outbox fields, "attempts":1,"reason":"status 400 ...","dead_at":"<RFC 3339>"}
//	{"type":"end","answers":120,"outbox":3,"dead_letters":1,"skipped":0}
//
// value and payload are standard base64 (RFC 4648) of the bytes stored;
// times are RFC 3339 with nanoseconds; outbox lines come in delivery order.
// The "end" line lets a reader tell a complete export from a truncated one.
// Unknown fields must be ignored by readers (later versions may add some).
func (s *Store) Export(ctx context.Context, w io.Writer) (ExportResult, error) {
	var res ExportResult
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	now := s.now().UTC()
	if err := enc.Encode(exportLine{Type: "header", Format: ExportFormat, Version: 1, Tenant: s.cfg.Tenant, ExportedAt: &now}); err != nil {
		return res, err
	}
	emit := func(l exportLine) error { return enc.Encode(l) }
	if err := s.exportRecords(ctx, emit, &res, false); err != nil {
		return res, err
	}
	if err := s.exportQueue(ctx, emit, &res); err != nil {
		return res, err
	}
	if err := s.exportRecords(ctx, emit, &res, true); err != nil {
		return res, err
	}
	if err := enc.Encode(exportLine{Type: "end", Answers: &res.Answers, Outbox: &res.Outbox, DeadLetters: &res.DeadLetters, Skipped: &res.Skipped}); err != nil {
		return res, err
	}
	return res, bw.Flush()
}

// exportRecords writes the answers (or, dead, the dead letters), reading the
// storage a page at a time: each page is copied out of one short read, and
// written only after it, so a slow or blocked writer never holds up the
// Store's writes (with the file, bbolt's remap on growth waits for open
// read transactions, which would stall every write).
func (s *Store) exportRecords(ctx context.Context, emit func(exportLine) error, res *ExportResult, dead bool) error {
	if !dead {
		buckets, err := s.answerBuckets(ctx)
		if err != nil {
			return err
		}
		for _, bn := range buckets {
			fn := bn[len(answerPrefix):]
			f := s.funcs[fn]
			if f == nil {
				f = &function{name: fn, bucket: []byte(bn), bkt: bn}
			}
			err := s.scanShared(ctx, bn, func(r Record) error {
				me, key, err := s.openAnswer(f, r.Key, r.Value, "")
				if err != nil {
					res.Skipped++
					return nil
				}
				res.Answers++
				return emit(exportLine{Type: "answer", Function: fn, Key: key, Value: me.value, StoredAt: timePtr(me.storedAt), NotAfter: timePtr(me.notAfter)})
			})
			if err != nil {
				return err
			}
		}
		return nil
	}
	return s.scanShared(ctx, sharedDead, func(r Record) error {
		d, err := s.outbox.openDead(r.Key, r.Value)
		if err != nil {
			res.Skipped++
			return nil
		}
		res.DeadLetters++
		m := d.Message
		return emit(exportLine{Type: "dead_letter", Seq: m.Seq, IdempotencyKey: m.IdempotencyKey, Partition: &m.Partition, Service: m.Service,
			Payload: m.Payload, EnqueuedAt: timePtr(m.EnqueuedAt.UnixNano()), Attempts: m.Attempts, Reason: d.Reason, DeadAt: timePtr(d.DeadAt.UnixNano())})
	})
}

func timePtr(ns int64) *time.Time {
	if ns == 0 {
		return nil
	}
	t := time.Unix(0, ns).UTC()
	return &t
}

// Import reads an export (see Export) back into the store, re-encrypting
// under the current key: answers keep their stored_at and not_after (an
// answer older than the one already stored for the same key is skipped),
// outbox messages and dead letters are appended in the export's order (an
// outbox message whose idempotency key is already pending is skipped). A
// function without a policy is imported too (and kept until it has one).
// Import stops at the first malformed line, naming it; what came before is
// imported. An export without its "end" line is reported as truncated
// (io.ErrUnexpectedEOF) after importing what it held.
func (s *Store) Import(ctx context.Context, r io.Reader) (ExportResult, error) {
	var res ExportResult
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), s.cfg.MaxValueBytes/3*4+4*MaxKeyBytes+maxReasonBytes+64<<10)
	// Lines are applied in batches of up to 256: the answers in one call to
	// the storage (one transaction with the file), the outbox lines in one
	// append. A dead letter line first applies the batch before it.
	var (
		answers []BucketRecord
		mks     []memKey
		drafts  []draft
	)
	flush := func() error {
		if len(answers) > 0 {
			wrote, err := s.putNewer(ctx, answers)
			if err != nil {
				return err
			}
			for _, w := range wrote {
				if w {
					res.Answers++
				} else {
					res.Skipped++
				}
			}
			if s.fb != nil {
				s.memMu.Lock()
				s.gen.Add(1)
				for i, mk := range mks {
					if wrote[i] {
						s.mem.Remove(mk)
					}
				}
				s.memMu.Unlock()
			}
			answers, mks = answers[:0], mks[:0]
		}
		if len(drafts) > 0 {
			seqs, err := s.outbox.append(ctx, drafts)
			if err != nil {
				return err
			}
			for _, seq := range seqs {
				if seq != 0 {
					res.Outbox++
				} else {
					res.Skipped++
				}
			}
			drafts = drafts[:0]
		}
		return nil
	}
	lineNo, ended := 0, false
	for sc.Scan() {
		lineNo++
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if ended {
			return res, fmt.Errorf("%w: import line %d: data after the end line", ErrInvalid, lineNo)
		}
		var l exportLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return res, fmt.Errorf("%w: import line %d: %v", ErrInvalid, lineNo, err)
		}
		if lineNo == 1 {
			if l.Type != "header" || l.Format != ExportFormat || l.Version != 1 {
				return res, fmt.Errorf("%w: import line 1 is not an %s version 1 header", ErrInvalid, ExportFormat)
			}
			continue
		}
		m, err := s.checkImportLine(l)
		if err != nil {
			return res, fmt.Errorf("import line %d: %w", lineNo, err)
		}
		switch {
		case l.Type == "end":
			ended = true
			continue
		case l.Type == "answer":
			ix, err := s.sharedIndex(ctx)
			if err != nil {
				return res, fmt.Errorf("import line %d: %w", lineNo, err)
			}
			bucket := answerPrefix + l.Function
			dk := ix.sum(l.Function, l.Key)
			storedAt := l.StoredAt.UnixNano()
			var notAfter int64
			if l.NotAfter != nil {
				notAfter = l.NotAfter.UnixNano()
			}
			rec := s.keys.seal(kindAnswer, storedAt, notAfter, []byte(bucket), dk, encodeAnswer(l.Key, l.Value))
			answers = append(answers, BucketRecord{Bucket: bucket, Record: Record{Key: dk, Value: rec, T1: storedAt, T2: notAfter}})
			mks = append(mks, memKey{l.Function, l.Key})
		case l.Type == "outbox":
			ix, err := s.sharedIndex(ctx)
			if err != nil {
				return res, fmt.Errorf("import line %d: %w", lineNo, err)
			}
			drafts = append(drafts, s.outbox.draft(ix, m, l.EnqueuedAt.UnixNano()))
		default: // dead_letter
			if err := flush(); err != nil {
				return res, err
			}
			if err := s.importDead(ctx, l, m); err != nil {
				return res, fmt.Errorf("import line %d: %w", lineNo, err)
			}
			res.DeadLetters++
			continue
		}
		if len(answers)+len(drafts) == 256 {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("%w: import line %d: %v", ErrInvalid, lineNo+1, err)
	}
	if err := flush(); err != nil {
		return res, err
	}
	if lineNo == 0 {
		return res, fmt.Errorf("%w: empty import", ErrInvalid)
	}
	if !ended {
		return res, fmt.Errorf("cache: import has no end line (truncated export): %w", io.ErrUnexpectedEOF)
	}
	return res, nil
}

// checkImportLine validates an import line and returns the message of an
// outbox or dead_letter line.
func (s *Store) checkImportLine(l exportLine) (Message, error) {
	switch l.Type {
	case "end":
		return Message{}, nil
	case "answer":
		if !validName(l.Function, true) || l.Key == "" || len(l.Key) > MaxKeyBytes || l.StoredAt == nil {
			return Message{}, fmt.Errorf("%w: answer needs a valid function, key and stored_at", ErrInvalid)
		}
		if len(l.Value) > s.cfg.MaxValueBytes {
			return Message{}, fmt.Errorf("%w: %s value of %d bytes", ErrTooLarge, l.Function, len(l.Value))
		}
		return Message{}, nil
	case "outbox", "dead_letter":
		dead := l.Type == "dead_letter"
		m := Message{IdempotencyKey: l.IdempotencyKey, Service: l.Service, Payload: l.Payload}
		if l.Partition != nil {
			m.Partition = *l.Partition
		}
		if m.Payload == nil {
			m.Payload = []byte{}
		}
		if err := s.outbox.validate(&m); err != nil {
			return Message{}, err
		}
		if l.EnqueuedAt == nil || (dead && l.DeadAt == nil) || len(l.Reason) > maxReasonBytes {
			return Message{}, fmt.Errorf("%w: %s needs enqueued_at (and dead_at), a bounded reason", ErrInvalid, l.Type)
		}
		if l.Attempts < 0 || l.Attempts > maxAttempts {
			return Message{}, fmt.Errorf("%w: %s attempts %d not within 0..%d", ErrInvalid, l.Type, l.Attempts, maxAttempts)
		}
		return m, nil
	case "header":
		return Message{}, fmt.Errorf("%w: a second header", ErrInvalid)
	}
	return Message{}, fmt.Errorf("%w: unknown line type %.32q", ErrInvalid, l.Type)
}

// importDead stores a validated dead_letter line under a new sequence number.
func (s *Store) importDead(ctx context.Context, l exportLine, m Message) error {
	seq, err := s.q.nextSeq(ctx)
	if err != nil {
		return err
	}
	k := seqKey(seq)
	m.Attempts = l.Attempts
	deadAt := l.DeadAt.UnixNano()
	rec := s.keys.seal(kindDead, deadAt, l.EnqueuedAt.UnixNano(), bucketDead, k, encodeMessage(&m, l.Reason, true))
	if err := s.rb.Put(ctx, s.cfg.Tenant, sharedDead, Record{Key: k, Value: rec, T1: deadAt}); err != nil {
		return err
	}
	if s.fb != nil {
		s.outbox.dead.Add(1)
	}
	return nil
}
