package connector

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/ehgate/ehgate/cache"
)

// What the client remembers across restarts, in the encrypted store (function
// functionState): the operator's fallback activations with their reasons, saved when they
// change; and the answers served from the store that wait to be checked again, saved by a
// background saver shortly after each change and at Close (a crash may lose the last few
// recorded before it). Without a store, neither survives a restart.
const (
	stateOperator       = "operator"
	stateRegularisation = "regularisation\x1f" // + service
	// maxStateBytes keeps a saved list under the store's value limit (1 MiB by default).
	maxStateBytes = 900 << 10
)

// savedRegularisation is one answer waiting to be checked again, as saved.
type savedRegularisation struct {
	Key        string          `json:"key"`
	Request    json.RawMessage `json:"request"`
	ServedAsOf time.Time       `json:"served_as_of"`
}

// saveOperator saves the operator's activations (service → reason).
func (c *Client) saveOperator() {
	if c.store == nil {
		return
	}
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	ops := c.modes.operators()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if len(ops) == 0 {
		err = c.store.Delete(ctx, functionState, stateOperator) // nothing to remember
	} else {
		var raw []byte
		if raw, err = json.Marshal(ops); err == nil {
			err = c.store.Put(ctx, functionState, stateOperator, raw)
		}
	}
	if err != nil && !errors.Is(err, cache.ErrNotFound) {
		c.log.Error("connector: operator fallback not saved: a restart will not remember it", zap.Error(err))
	}
}

// restoreState puts back the operator's activations and the answers waiting to be checked
// again, as saved before the last stop.
func (c *Client) restoreState() {
	if c.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if e, err := c.store.Get(ctx, functionState, stateOperator); err == nil {
		var ops map[string]string
		if err := json.Unmarshal(e.Value, &ops); err != nil {
			c.log.Error("connector: saved operator fallback unreadable, ignored", zap.Error(err))
		}
		for service, reason := range ops {
			c.log.Info("connector: operator fallback restored", zap.String("service", service), zap.String("reason", reason))
			c.modes.update(service, CauseOperator+": "+reason, func(s *serviceState) { s.operator = reason })
		}
	} else if !errors.Is(err, cache.ErrNotFound) {
		c.log.Error("connector: saved operator fallback not read", zap.Error(err))
	}
	for _, service := range []string{ServiceInsurability, ServiceGenericInsurability} {
		e, err := c.store.Get(ctx, functionState, stateRegularisation+service)
		if err != nil {
			if !errors.Is(err, cache.ErrNotFound) {
				c.log.Error("connector: saved regularisation list not read", zap.String("service", service), zap.Error(err))
			}
			continue
		}
		var saved []savedRegularisation
		if err := json.Unmarshal(e.Value, &saved); err != nil {
			c.log.Error("connector: saved regularisation list unreadable, ignored", zap.String("service", service), zap.Error(err))
			continue
		}
		n := 0
		for _, sr := range saved {
			entry, err := c.restoredEntry(service, sr)
			if err != nil {
				continue
			}
			c.regular.restore(service, sr.Key, entry)
			n++
		}
		if n > 0 {
			c.log.Info("connector: answers waiting to be checked again restored", zap.String("service", service), zap.Int("count", n))
		}
	}
}

// restoredEntry rebuilds the check of a saved answer.
func (c *Client) restoredEntry(service string, sr savedRegularisation) (regEntry, error) {
	switch service {
	case ServiceInsurability:
		var req InsurabilityRequest
		if err := json.Unmarshal(sr.Request, &req); err != nil {
			return regEntry{}, err
		}
		return restoredCheck(c, service, functionInsurability, c.cfg.Policies.Insurability, sr, req, (*Client).liveInsurability), nil
	case ServiceGenericInsurability:
		var req GenericInsurabilityRequest
		if err := json.Unmarshal(sr.Request, &req); err != nil {
			return regEntry{}, err
		}
		return restoredCheck(c, service, functionGenericInsurability, c.cfg.Policies.GenericInsurability, sr, req, (*Client).liveGenericInsurability), nil
	}
	return regEntry{}, errors.New("connector: no regularisation for " + service)
}

// restoredCheck is recheck for an answer served before a restart: the answer served is read
// back from the store (a zero answer when it is no longer there, which then reads as changed).
func restoredCheck[A, Q any](c *Client, service, function string, policy Policy, sr savedRegularisation, req Q,
	live func(*Client, context.Context, Q) (A, string, error)) regEntry {
	p := priority[A, Q]{service: service, function: function, policy: policy, key: sr.Key, request: req, live: live}
	return regEntry{request: req, servedAsOf: sr.ServedAsOf, check: func(ctx context.Context) (Difference, error) {
		served := outcome[A]{AsOf: sr.ServedAsOf}
		if s, _, err := lookupStored[A, Q](c, ctx, function, sr.Key, 0, time.Time{}); err == nil {
			served.Answer = s.Answer
		}
		return recheck(c, p, served)(ctx)
	}}
}

// restore puts back a saved entry (not marked for saving: it is saved already).
func (r *regulariser) restore(service, key string, e regEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.pending[service]
	if m == nil {
		m = map[string]regEntry{}
		r.pending[service] = m
	}
	if _, ok := m[key]; !ok && len(r.keys) < maxRegularisation {
		m[key] = e
		r.keys[key] = struct{}{}
	}
}

// saver saves the pending lists that changed, until ctx ends, then once more.
func (r *regulariser) saver(ctx context.Context) {
	for {
		select {
		case <-r.kick:
			r.save()
		case <-ctx.Done():
			r.save()
			return
		}
	}
}

// save writes every changed pending list.
func (r *regulariser) save() {
	c := r.c
	if c.store == nil {
		return
	}
	r.mu.Lock()
	lists := map[string][]savedRegularisation{}
	for service := range r.dirty {
		size := 0
		list := []savedRegularisation{}
		for key, e := range r.pending[service] {
			raw, err := json.Marshal(e.request)
			if err != nil {
				continue
			}
			if size += len(key) + len(raw) + 64; size > maxStateBytes {
				c.log.Warn("connector: regularisation list too long to save entirely; the rest is kept in memory only", zap.String("service", service))
				break
			}
			list = append(list, savedRegularisation{Key: key, Request: raw, ServedAsOf: e.servedAsOf})
		}
		lists[service] = list
	}
	clear(r.dirty)
	r.mu.Unlock()
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	for service, list := range lists {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var err error
		if len(list) == 0 {
			err = c.store.Delete(ctx, functionState, stateRegularisation+service)
		} else {
			var raw []byte
			if raw, err = json.Marshal(list); err == nil {
				err = c.store.Put(ctx, functionState, stateRegularisation+service, raw)
			}
		}
		cancel()
		if err != nil && !errors.Is(err, cache.ErrNotFound) {
			c.log.Error("connector: regularisation list not saved: a restart may forget answers to check again", zap.String("service", service), zap.Error(err))
		}
	}
}
