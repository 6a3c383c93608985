package connector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ehgate/ehgate/cache"
)

// OperatorAction is one thing an operator did to the client (from an operator console:
// fallback activated or ended, a drill, a dead letter requeued or discarded), with who, when,
// why and how it went. It must hold no personal data: reasons are the operator's words about
// the platform, results are error texts, which never name a patient.
type OperatorAction struct {
	At       time.Time `json:"at"`
	Operator string    `json:"operator"`
	Action   string    `json:"action"`
	Target   string    `json:"target,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Result   string    `json:"result"`
}

// MaxOperatorActions is how many operator actions the client keeps (the oldest are dropped).
const MaxOperatorActions = 200

// Bounds of an operator action's fields (longer texts are cut): the log stays well under
// the store's value limit.
const (
	maxActionOperator = 100
	maxActionAction   = 60
	maxActionTarget   = 200
	maxActionReason   = 300
	maxActionResult   = 300
)

const stateOperatorLog = "operator-log"

// RecordOperatorAction appends a to the client's operator log and returns once it is durable:
// the log is one sealed record of the encrypted store (AES-GCM, as every record; shared by a
// fleet's instances with a StoreBackend), so it survives restarts; it keeps the last
// MaxOperatorActions. A zero a.At is now by the client's clock; over-long fields are cut.
// Without a local store it returns the store's error and nothing is kept. Safe for concurrent
// use, and across a fleet: the record is updated with cache.Store.Update, so instances
// recording at the same instant keep every action.
func (c *Client) RecordOperatorAction(ctx context.Context, a OperatorAction) error {
	ctx, end, err := c.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	if c.store == nil {
		return c.storeErr
	}
	if a.At.IsZero() {
		a.At = c.clock.Now()
	}
	a.At = a.At.UTC()
	a.Operator, a.Action, a.Target = cut(a.Operator, maxActionOperator), cut(a.Action, maxActionAction), cut(a.Target, maxActionTarget)
	a.Reason, a.Result = cut(a.Reason, maxActionReason), cut(a.Result, maxActionResult)
	err = c.store.Update(context.WithoutCancel(ctx), functionState, stateOperatorLog, func(old []byte) ([]byte, error) {
		var log []OperatorAction
		if old != nil && json.Unmarshal(old, &log) != nil {
			log = nil // an unreadable log is replaced: the new action is kept, not refused
		}
		log = append(log, a)
		if over := len(log) - MaxOperatorActions; over > 0 {
			log = log[over:]
		}
		return json.Marshal(log)
	})
	if err != nil {
		return fmt.Errorf("connector: operator log not saved: %w", err)
	}
	return nil
}

// OperatorActions returns the operator log, oldest first (see RecordOperatorAction).
func (c *Client) OperatorActions(ctx context.Context) ([]OperatorAction, error) {
	ctx, end, err := c.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	if c.store == nil {
		return nil, c.storeErr
	}
	return c.operatorLog(ctx)
}

// operatorLog reads the saved log (none saved = empty).
func (c *Client) operatorLog(ctx context.Context) ([]OperatorAction, error) {
	e, err := c.store.Get(ctx, functionState, stateOperatorLog)
	if errors.Is(err, cache.ErrNotFound) || errors.Is(err, cache.ErrExpired) {
		return nil, nil // none recorded, or none for longer than the state is kept
	}
	if err != nil {
		return nil, fmt.Errorf("connector: operator log: %w", err)
	}
	var log []OperatorAction
	if err := json.Unmarshal(e.Value, &log); err != nil {
		return nil, fmt.Errorf("connector: operator log unreadable: %w", err)
	}
	return log, nil
}

// cut shortens s to at most n bytes, on a character boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
