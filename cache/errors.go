package cache

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrNotFound: no answer is stored for this function and key.
	ErrNotFound = errors.New("cache: not found")
	// ErrExpired: an answer is stored but it is too old to be served, or its
	// NotAfter has passed. The error is an *ExpiredError.
	ErrExpired = errors.New("cache: expired")
	// ErrUnknownFunction: the function has no policy in Config.Functions.
	ErrUnknownFunction = errors.New("cache: unknown function")
	// ErrTooLarge: a key or value exceeds the configured limits.
	ErrTooLarge = errors.New("cache: too large")
	// ErrInvalid: an argument is empty or malformed.
	ErrInvalid = errors.New("cache: invalid argument")
	// ErrClosed: the Store is closed.
	ErrClosed = errors.New("cache: store closed")
	// ErrTampered: a record on disk failed authentication (altered, swapped
	// with another record, or encrypted under a key that is not configured).
	// Such a record is skipped, never returned; Get wraps ErrTampered together
	// with ErrNotFound.
	ErrTampered = errors.New("cache: record failed authentication")
	// ErrUnsafePath: the store file is a symbolic link (dangling or not: it
	// could put the file anywhere), or, with Config.OnWideAccess set to
	// AccessRefuse, Dir or the file can be read or written by the group or
	// others. Open returns it wrapped with the path.
	ErrUnsafePath = errors.New("cache: store path is not safe")
	// ErrCorrupt: the store file is truncated or garbled. Open returns it
	// inside a *FileError.
	ErrCorrupt = errors.New("cache: store file corrupt")
	// ErrDamaged: the store file was damaged while the Store had it open (it
	// shrank under it, or a page became unreadable), found by a memory fault
	// on the mapped file. The error is a *FileError that also wraps
	// ErrCorrupt; the Store then stops using the file (every read of the file
	// and every write returns it; answers in memory are still served). Close
	// it and Open again: Config.OnCorrupt decides what happens to the file.
	ErrDamaged = errors.New("cache: store file damaged while open")
	// ErrUnknownKey: the store file was encrypted under keys none of which is
	// in Config.Keys (or a key ID matches but its secret does not). Open
	// returns it inside a *FileError.
	ErrUnknownKey = errors.New("cache: store file encrypted under an unknown key")
	// ErrLocked: another process holds the store file.
	ErrLocked = errors.New("cache: store file locked by another process")
	// ErrPermanent marks a send error as a permanent (business) rejection:
	// Replay moves the entry to the dead letters instead of retrying it. Wrap
	// it (fmt.Errorf("...: %w", cache.ErrPermanent)) or use Permanent.
	ErrPermanent = errors.New("cache: permanent rejection")
	// ErrReplaying: Replay was called while another Replay of the same Outbox runs.
	ErrReplaying = errors.New("cache: replay already running")
)

// ExpiredError says why a stored answer may not be served. It never names the key.
type ExpiredError struct {
	Function string
	StoredAt time.Time
	Age      time.Duration
	// Until is when the answer stopped being servable: StoredAt +
	// Policy.ServeStale, or the record's NotAfter if earlier.
	Until time.Time
	// NotAfter is true when the record's own NotAfter ended it.
	NotAfter bool
}

func (e *ExpiredError) Error() string {
	if e.NotAfter {
		return fmt.Sprintf("cache: %s answer past its not-after time %s", e.Function, e.Until.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("cache: %s answer is %s old, served only up to %s", e.Function, e.Age.Round(time.Second), e.Until.Sub(e.StoredAt))
}

// Is reports whether target is ErrExpired.
func (e *ExpiredError) Is(target error) bool { return target == ErrExpired }

// FileError reports a store file Open could not use, or one damaged while
// open (ErrDamaged). Err wraps ErrCorrupt or ErrUnknownKey and the underlying cause.
type FileError struct {
	// Path is the store file.
	Path string
	// MovedTo is where the file was moved (Config.OnCorrupt), or "" if it was left in place.
	MovedTo string
	Err     error
}

func (e *FileError) Error() string {
	if e.MovedTo != "" {
		return fmt.Sprintf("cache: store file %s unusable (moved to %s): %v", e.Path, e.MovedTo, e.Err)
	}
	return fmt.Sprintf("cache: store file %s unusable: %v", e.Path, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// Permanent marks err as a permanent rejection for Replay (see ErrPermanent).
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }
