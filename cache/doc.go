// Package cache is the durable, encrypted local store of ehgate's fallback
// mode: it keeps the answers of priority functions (insurability, ETK,
// tokens, or any function a vendor registers) with a freshness, stale-serving
// and retention policy per function, and it queues writes made during an
// outage in an outbox that replays them, in order per partition, when the
// platform is back. It knows nothing of SOAP or of what the answers mean:
// keys and values are opaque strings and bytes.
//
// The smallest use:
//
//	st, err := cache.Open(cache.Config{
//		Dir:  "/var/lib/pharmacy/ehgate",
//		Keys: []cache.Key{{ID: "2026-11", Secret: key32}}, // from the vendor's key store
//	})
//	if err != nil { ... }
//	defer st.Close()
//	_ = st.Put(ctx, cache.FunctionInsurability, ssin, answer)
//	e, err := st.Get(ctx, cache.FunctionInsurability, ssin) // e.Value, e.Age, e.Fresh
//	_ = st.Outbox().Enqueue(ctx, cache.Message{IdempotencyKey: ref, Partition: p, Service: "mycarenettarification:v1", Payload: body})
//	_, err = st.Outbox().Replay(ctx, send)
//
// # Storage
//
// One bbolt file per tenant, Dir/<Tenant>.db. Every record is encrypted with
// AES-256-GCM under a key derived (HKDF-SHA256) from a vendor key, whose ID is
// written with the record; its associated data binds it to its bucket and
// bbolt key, so records cannot be moved or swapped. Logical keys (SSINs, for
// instance) are stored only inside the ciphertext: the bbolt key is an
// HMAC-SHA256 of the function and logical key, under a key derived from a
// random per-file index key, itself stored encrypted under each vendor key
// ("key check" records, also used at Open to detect a file written under
// unknown keys). Key rotation: put the new key first in Config.Keys and keep
// the old ones listed; new records use the new key, old ones stay readable;
// Store.Rekey rewrites old records so old keys can be retired.
//
// A memory LRU holds decrypted answers: a hit reads neither the file nor
// decrypts. Writes (Put, Enqueue, removals) go through one group committer:
// writes that arrive while a commit is being synced share the next commit, so
// every call returns only once its data is on disk (fsync) while concurrent
// producers pay for few syncs.
//
// A Put with the Deferred option does not wait for that sync: it returns once
// the writer has the answer (Get sees it at once, from memory) and the writer
// commits deferred answers together, within Config.DeferredFlush or with the
// next durable write, or at Flush and Close. Meant for answers that can be
// fetched again: a crash may lose the last few. A failed commit is logged
// without personal data and counted in Stats.DeferredFailed. With a Backend,
// deferred answers wait in memory until the flusher writes them in one
// statement (BatchBackend) and are served from there meanwhile; a deferred
// answer never replaces one stored with a later time (another instance's
// newer answer for the same key, written before this one's flush).
//
// # Shared storage (a fleet)
//
// The Store's logic (sealing, HMAC keys, policies, purge, rekey, export and
// import, the outbox's order, retries and dead letters) is written once,
// against the records of a RecordBackend and an outbox queue; the bbolt file
// is one such storage (with what only a file used by one process can offer:
// the memory LRU, group commit, hooks in commit order, the damaged-file
// checks and ErrLocked) and a Config.Backend the other.
//
// With Config.Backend set (package pgstore keeps the records in PostgreSQL),
// several instances of a program share one tenant's answers and outbox. The
// records are sealed by the Store exactly as in the file (AES-256-GCM under
// the vendor's keys, logical keys, partitions and idempotency keys as HMACs
// under the tenant's index key), so the backend sees no personal data. Reads
// go to the backend every time (no memory LRU: another instance may have
// replaced an answer). Any instance replays the outbox: a partition is
// delivered by the instance holding its lease, in order, and taken over by
// another one after OutboxConfig.Lease if that instance dies. When the backend
// is unreachable, calls return ErrUnavailable (nothing is stored or read
// silently elsewhere) and the next call after it is back succeeds; Open
// itself succeeds and loads the tenant's keys when the backend answers.
//
// # Files, locks and renames on each operating system
//
// While a Store is open its file is locked exclusively, so a second process
// (or a second Open in the same process) waits up to Config.LockTimeout and
// then gets ErrLocked. On Linux and macOS the lock is bbolt's flock(2)
// (advisory: it stops every ehgate, not a program that ignores it; keep Dir on
// a local disk, as network file systems may not carry it between machines).
// On Windows it is LockFileEx on a byte range of the file (mandatory: other
// programs cannot write the locked range either).
//
// Durability: commits are flushed with fdatasync on Linux, F_FULLFSYNC on
// macOS (the Go standard library's File.Sync) and FlushFileBuffers on Windows.
// Creating the file and moving a damaged file aside are made durable by
// flushing the directory on Unix; on Windows, where a directory cannot be
// flushed, the move is a write-through MoveFileEx and the creation relies on
// NTFS journalling directory changes. On Windows a move aside fails, after
// about a second of retries, while another program (a backup or a virus
// scanner) holds the file open; Open then returns an error naming the
// cause wrapped around the *FileError and leaves the file in place.
//
// # Faults
//
// Open checks the file (bbolt's meta pages and page consistency, truncation,
// format, key check); an unusable file gives a *FileError wrapping ErrCorrupt
// or ErrUnknownKey and is left in place, moved aside, or moved aside and
// replaced by a fresh store, as Config.OnCorrupt says. A record that fails
// authentication is never returned: it is counted (Stats.AuthFailures),
// logged at warn level without personal data, and reported by Get as
// ErrNotFound wrapping ErrTampered.
//
// # Export format
//
// Export writes JSON Lines, one object per line, UTF-8, described at Export.
package cache
