package bcp

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"github.com/ehgate/ehgate/internal/atomicfile"
)

// ErrNoStoredList is returned by a ListStore's Load when nothing has been saved yet.
var ErrNoStoredList = errors.New("bcp: no stored service list")

// ListStore keeps the last good service list (its exact bytes, signature included) so that a
// client restarted while the list cannot be fetched starts in the right mode.
// Implementations must be safe for concurrent use.
type ListStore interface {
	// Load returns the saved bytes, or an error matching ErrNoStoredList when none were saved.
	Load() ([]byte, error)
	// Save replaces the saved bytes durably: after it returns nil, a crash leaves either
	// these bytes or, had it failed, the previous ones, never a mix.
	Save(raw []byte) error
}

// FileListStore is a ListStore in one file. Save writes a temporary file in the same
// directory, syncs it, renames it over Path and makes the rename durable (on Windows with a
// write-through move, as a directory cannot be flushed there; a Save that meets another
// process reading the file retries for about a second). Safe for concurrent use.
type FileListStore struct {
	path string
	mu   sync.Mutex
}

// NewFileListStore returns a store writing to path; its directory must exist.
func NewFileListStore(path string) *FileListStore { return &FileListStore{path: path} }

// Path returns the file the store writes.
func (s *FileListStore) Path() string { return s.path }

// Load reads the file, refusing one larger than MaxServiceListBytes. A missing or empty file
// is ErrNoStoredList.
func (s *FileListStore) Load() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.Open(s.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNoStoredList, s.path)
		}
		return nil, fmt.Errorf("bcp: load service list: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxServiceListBytes+1))
	if err != nil {
		return nil, fmt.Errorf("bcp: load service list %s: %w", s.path, err)
	}
	if len(b) > MaxServiceListBytes {
		return nil, fmt.Errorf("bcp: load service list %s: %w: more than %d bytes", s.path, ErrListTooLarge, MaxServiceListBytes)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: %s is empty", ErrNoStoredList, s.path)
	}
	return b, nil
}

// Save atomically replaces the file with raw.
func (s *FileListStore) Save(raw []byte) error {
	if len(raw) == 0 {
		return errors.New("bcp: save service list: empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := atomicfile.WriteFile(s.path, raw, 0o600); err != nil {
		return fmt.Errorf("bcp: save service list: %w", err)
	}
	return nil
}
