package fileutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTryLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".lock")
	l, err := TryLock(path, "run dir X")
	if err != nil {
		t.Fatal(err)
	}
	if !Locked(path) {
		t.Error("Locked = false while held")
	}
	_, err = TryLock(path, "run dir X")
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("process %d", os.Getpid())) {
		t.Errorf("second lock: %v, want ErrLocked naming process %d", err, os.Getpid())
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if Locked(path) {
		t.Error("Locked = true after Unlock")
	}
	l2, err := TryLock(path, "run dir X")
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	_ = l2.Unlock()
}

func TestLockExisting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.tmp-1")
	if Locked(path) {
		t.Error("a missing file is reported locked")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("Locked created %s", path)
	}
	if err := os.WriteFile(path, []byte("pixels"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, ok, err := LockExisting(path)
	if err != nil || !ok {
		t.Fatalf("LockExisting: %v %v", ok, err)
	}
	if !Locked(path) {
		t.Error("Locked = false while held")
	}
	if raw, _ := os.ReadFile(path); string(raw) != "pixels" {
		t.Errorf("LockExisting changed the file: %q", raw)
	}
	_ = l.Unlock()
	if Locked(path) {
		t.Error("Locked = true after Unlock")
	}
}
