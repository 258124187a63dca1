// Package fileutil writes files so that a crash at any moment leaves either the old file or the
// complete new one, never a half-written file that is later trusted.
package fileutil

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteAtomic writes data to a temporary file in path's directory, syncs it, and renames it over path.
func WriteAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	name := tmp.Name()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = CommitFile(tmp, path)
	} else {
		_ = tmp.Close()
	}
	if err != nil {
		_ = os.Remove(name)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// CommitFile makes f, a complete file written under a temporary name, the file final: it syncs f's
// data, closes it, renames it over final and syncs the folder, so that after a crash final is either
// the old file or the complete new one. On error the temporary file is left for the caller to remove.
func CommitFile(f *os.File, final string) error {
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), final); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(final))
}

// CommitDir makes tmp, a complete folder written under a temporary name, the folder final: every
// file below tmp is synced, then tmp is renamed to final (an existing final is removed first when
// replace is set, else the rename fails) and the parent folder synced. On error tmp is left for the
// caller to remove.
func CommitDir(tmp, final string, replace bool) error {
	err := filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if d.IsDir() {
			_ = f.Sync() // best effort: not every platform syncs folders
			return nil
		}
		return f.Sync()
	})
	if err != nil {
		return err
	}
	if replace {
		if err := os.RemoveAll(final); err != nil {
			return err
		}
	} else if _, err := os.Lstat(final); err == nil {
		return fmt.Errorf("%s already exists", final)
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(final))
}

// SyncDir fsyncs a directory so that renames inside it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	_ = d.Sync() // not supported everywhere; best effort.
	return nil
}
