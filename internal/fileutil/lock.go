package fileutil

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// ErrLocked is wrapped by the error TryLock returns when another process holds the lock.
var ErrLocked = errors.New("in use by another process")

// Lock is an exclusive advisory lock (flock(2) on Unix) held on a lock file. The operating system
// releases it when the process ends, however it ends, so a killed run never leaves a stale lock.
type Lock struct {
	fl *flock.Flock
}

// TryLock takes the lock on path (created if missing) without waiting. The holder's description
// (process id, host, start time and what) is written into the file, so that a second process can
// say who holds it: its error wraps ErrLocked and quotes that description.
func TryLock(path, what string) (*Lock, error) {
	fl := flock.New(path)
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if !ok {
		holder, _ := os.ReadFile(path)
		h := strings.TrimSpace(string(holder))
		if h == "" {
			h = "a process that has not said who it is yet"
		}
		return nil, fmt.Errorf("%s is %w: %s (lock file %s)", what, ErrLocked, h, path)
	}
	host, _ := os.Hostname()
	desc := fmt.Sprintf("process %d on %s, since %s, %s", os.Getpid(), host, time.Now().Format(time.RFC3339), what)
	if err := os.WriteFile(path, []byte(desc+"\n"), 0o644); err != nil {
		_ = fl.Unlock()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return &Lock{fl: fl}, nil
}

// LockExisting takes the lock on an existing file whose contents belong to its writer (a file being
// built), without writing to it; ok is false when another process holds it.
func LockExisting(path string) (l *Lock, ok bool, err error) {
	fl := flock.New(path, flock.SetFlag(os.O_RDONLY))
	ok, err = fl.TryLock()
	if err != nil || !ok {
		return nil, false, err
	}
	return &Lock{fl: fl}, true, nil
}

// Locked reports whether another process (or another Lock in this one) holds the lock on the
// existing file path; false when the file does not exist.
func Locked(path string) bool {
	l, ok, err := LockExisting(path)
	if err != nil {
		return false
	}
	if ok {
		_ = l.Unlock()
	}
	return !ok
}

// UnlockAndRemove removes the lock file, then releases the lock. A process that opened the file
// just before may then lock the removed file while a third locks a new one: use it only where two
// holders at once are harmless and a lock file left behind is clutter (a cache built next to others).
func (l *Lock) UnlockAndRemove() error {
	if l == nil || l.fl == nil {
		return nil
	}
	_ = os.Remove(l.fl.Path())
	return l.fl.Unlock()
}

// Unlock releases the lock (the file stays: removing it could let two processes lock two files).
func (l *Lock) Unlock() error {
	if l == nil || l.fl == nil {
		return nil
	}
	return l.fl.Unlock()
}
