package fileutil

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.json")
	if err := WriteAtomic(p, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteAtomic(p, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "two" {
		t.Fatalf("read %q, %v", b, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	if err := WriteAtomic(filepath.Join(dir, "missing", "x"), []byte("x"), 0o644); err == nil {
		t.Error("writing into a missing directory gave no error")
	}
}

func TestCommitDir(t *testing.T) {
	root := t.TempDir()
	mk := func(name, content string) string {
		d := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Join(d, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "sub", "f"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	final := filepath.Join(root, "final")
	if err := CommitDir(mk(".tmp-1", "one"), final, false); err != nil {
		t.Fatal(err)
	}
	if err := CommitDir(mk(".tmp-2", "two"), final, false); err == nil {
		t.Error("committed over an existing folder without replace")
	}
	if err := CommitDir(filepath.Join(root, ".tmp-2"), final, true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(final, "sub", "f")); string(b) != "two" {
		t.Errorf("after replace: %q", b)
	}
	if _, err := os.Stat(filepath.Join(root, ".tmp-2")); !os.IsNotExist(err) {
		t.Error("temporary folder still there")
	}
}
