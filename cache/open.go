package cache

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ehgate/ehgate/internal/atomicfile"
)

const (
	formatKey      = "format"
	formatValue    = "ehgate-cache/1"
	keyCheckPrefix = "keycheck:"
)

// openFile opens and checks the store file, returning the bbolt handle and the
// file's index key (the secret behind the HMACs of logical keys). A file that
// is damaged or encrypted under other keys gives a *FileError. bbolt is driven
// on its own goroutine with faults turned into panics, so a damaged file cannot
// crash the process.
func openFile(path string, cfg Config, kr *keyring, now func() time.Time) (*bolt.DB, *indexer, error) {
	type result struct {
		db  *bolt.DB
		ix  *indexer
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				if r.db != nil {
					_ = r.db.Close()
				}
				r = result{err: &FileError{Path: path, Err: fmt.Errorf("%w: %v", ErrCorrupt, p)}}
			}
			ch <- r
		}()
		debug.SetPanicOnFault(true)
		r.db, r.ix, r.err = openChecked(path, cfg, kr, now)
		if r.err != nil && r.db != nil {
			_ = r.db.Close()
			r.db = nil
		}
	}()
	r := <-ch
	return r.db, r.ix, r.err
}

func corrupt(path string, format string, args ...any) error {
	return &FileError{Path: path, Err: fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)}
}

func openChecked(path string, cfg Config, kr *keyring, now func() time.Time) (*bolt.DB, *indexer, error) {
	existed := false
	// A link could put the file anywhere (and a dangling one would be
	// followed to create it there): refused, not followed.
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return nil, nil, fmt.Errorf("%w: store file %s is a symbolic link", ErrUnsafePath, path)
	}
	if fi, err := os.Stat(path); err == nil {
		existed = true
		if !fi.Mode().IsRegular() {
			return nil, nil, fmt.Errorf("cache: store file %s is not a regular file", path)
		}
		if fi.Size() == 0 {
			// bbolt would silently initialise an empty file: a store truncated to nothing.
			return nil, nil, corrupt(path, "file is empty")
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("cache: store file: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: cfg.LockTimeout})
	if err != nil {
		var pe *fs.PathError
		switch {
		case errors.Is(err, bolt.ErrTimeout):
			return nil, nil, fmt.Errorf("%w: %s", ErrLocked, path)
		case errors.As(err, &pe) && !existed:
			return nil, nil, fmt.Errorf("cache: creating store file: %w", err)
		}
		return nil, nil, corrupt(path, "%v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return db, nil, fmt.Errorf("cache: store file: %w", err)
	}
	if !existed {
		// Make the new file's directory entry durable too.
		if err := atomicfile.SyncDir(filepath.Dir(path)); err != nil {
			return db, nil, fmt.Errorf("cache: syncing store directory: %w", err)
		}
	}
	var ix []byte
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Size() > fi.Size() {
			return corrupt(path, "file is %d bytes but its pages reach %d bytes (truncated)", fi.Size(), tx.Size())
		}
		if !cfg.SkipIntegrityCheck {
			var first error
			n := 0
			for cerr := range tx.Check() { // drain: the checker runs until it has reported everything
				if first == nil {
					first = cerr
				}
				n++
			}
			if first != nil {
				return corrupt(path, "consistency check found %d problems, first: %v", n, first)
			}
		}
		return nil
	})
	if err != nil {
		return db, nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		if m == nil {
			others := 0
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { others++; return nil })
			if others > 0 {
				return corrupt(path, "no metadata bucket")
			}
			// A new store: draw its index key and record it under the current key.
			m, err = tx.CreateBucket(bucketMeta)
			if err != nil {
				return err
			}
			if err := m.Put([]byte(formatKey), []byte(formatValue)); err != nil {
				return err
			}
			ix = make([]byte, 32)
			_, _ = rand.Read(ix)
			return putKeyCheck(m, kr, kr.current, ix, now())
		}
		var recs []Record
		if err := m.ForEach(func(k, v []byte) error {
			recs = append(recs, Record{Key: bytes.Clone(k), Value: bytes.Clone(v)})
			return nil
		}); err != nil {
			return err
		}
		var needCheck bool
		if ix, needCheck, err = indexFromMeta(path, "file", kr, recs); err != nil {
			return err
		}
		if needCheck {
			return putKeyCheck(m, kr, kr.current, ix, now())
		}
		return nil
	})
	if err != nil {
		return db, nil, err
	}
	index, err := newIndexer(ix)
	if err != nil {
		return db, nil, err
	}
	return db, index, nil
}

// indexFromMeta checks a store's meta records (the format record and the
// "key check" records: the index key sealed under each vendor key) against
// the configured keys and returns the index key, and whether the current key
// lacks its key check record. where names the storage in errors ("file",
// "backend"). Both storages open through it.
func indexFromMeta(path, where string, kr *keyring, recs []Record) (ix []byte, needCheck bool, err error) {
	var format []byte
	for _, r := range recs {
		if string(r.Key) == formatKey {
			format = r.Value
		}
	}
	if !bytes.Equal(format, []byte(formatValue)) {
		return nil, false, corrupt(path, "unknown format %.32q", format)
	}
	var present []string
	hasCurrent := false
	for _, r := range recs {
		k := string(r.Key)
		if !strings.HasPrefix(k, keyCheckPrefix) {
			continue
		}
		id := k[len(keyCheckPrefix):]
		present = append(present, id)
		hasCurrent = hasCurrent || id == kr.current
		if kr.wraps[id] == nil {
			continue
		}
		_, pt, err := kr.open(r.Value, bucketMeta, r.Key, kindKeyCheck)
		if err != nil || len(pt) != 32 {
			return nil, false, &FileError{Path: path, Err: fmt.Errorf("%w: key %q does not match the key with that ID in the %s", ErrUnknownKey, id, where)}
		}
		if ix != nil && !bytes.Equal(ix, pt) {
			return nil, false, corrupt(path, "key check records disagree")
		}
		ix = pt
	}
	if ix == nil {
		sort.Strings(present)
		if len(present) == 0 {
			return nil, false, corrupt(path, "no key check record")
		}
		return nil, false, &FileError{Path: path, Err: fmt.Errorf("%w: %s written under key IDs %s, none configured", ErrUnknownKey, where, strings.Join(present, ", "))}
	}
	return ix, !hasCurrent, nil
}

func putKeyCheck(m *bolt.Bucket, kr *keyring, id string, ix []byte, now time.Time) error {
	k := []byte(keyCheckPrefix + id)
	return m.Put(k, kr.sealWith(id, kindKeyCheck, now.UnixNano(), 0, bucketMeta, k, ix))
}

// moveAside renames an unusable store file with a timestamp suffix; it never deletes.
func moveAside(path string, now time.Time) (string, error) {
	to := path + ".corrupt-" + now.UTC().Format("20060102T150405.000000000Z")
	for i := 1; ; i++ {
		if _, err := os.Lstat(to); errors.Is(err, fs.ErrNotExist) {
			break
		}
		to = fmt.Sprintf("%s.corrupt-%s-%d", path, now.UTC().Format("20060102T150405.000000000Z"), i)
	}
	if err := atomicfile.Rename(path, to); err != nil {
		return "", err
	}
	return to, nil
}
