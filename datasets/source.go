package datasets

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// DefaultJFIFWindow is how many leading bytes TFDS's cats_vs_dogs rule searches for "JFIF". The
// TFDS source reads `b"JFIF" in fobj.peek(10)`, but fobj is a zipfile.ZipExtFile, whose peek returns
// whatever it has buffered, up to 512 bytes (CPython's zipfile: "Return up to 512 bytes to reduce
// allocation overhead"), and the first read of an entry buffers at least that much. So the rule TFDS
// really applies, and whose count it asserts (1,738 skipped), is "JFIF within the first 512 bytes".
// SourceOptions.JFIFWindow = 10 gives the literal reading instead.
const DefaultJFIFWindow = 512

// DefaultMaxFileBytes bounds the size of one image file (zip entries included), so that a corrupt
// zip directory or a stray huge file cannot make us read gigabytes into memory.
const DefaultMaxFileBytes = 256 << 20

// SourceOptions configure OpenCatsVsDogs and OpenImageFolder.
type SourceOptions struct {
	// OrderSeed seeds the permutation that fixes the example order (see Source). The zero value is
	// the package's documented default order.
	OrderSeed uint64
	// JFIFWindow is the number of leading bytes searched for "JFIF" by the cats_vs_dogs rule
	// (0: DefaultJFIFWindow). Image folders do not apply the rule.
	JFIFWindow int
	// MaxFileBytes bounds the size of one file (0: DefaultMaxFileBytes); larger files are skipped
	// with SkipTooLarge.
	MaxFileBytes int64
}

// Example is one labelled file of a Source, before decoding.
type Example struct {
	Name  string // path relative to the source root, "/"-separated, e.g. "PetImages/Cat/0.jpg".
	Label int    // index into Source.Classes.
}

// entry is an Example with the means to read it.
type entry struct {
	Example
	size int64
	zf   *zip.File // zip sources.
	path string    // folder sources: the file to read.
}

// Source is a labelled list of image files in a fixed, documented order: the sorted list of
// candidate files (byte order of their relative names) permuted by a Fisher-Yates shuffle seeded
// with SourceOptions.OrderSeed (SplitMix64, this package's own generator, stable across Go
// releases). Split expressions slice this order, so "train[:40%]" is a fixed, class-mixed subset.
//
// TFDS fixes its own cats_vs_dogs order when it generates the dataset (by hashing the example
// keys into shards); that order cannot be reproduced without TFDS, so our train[:40%] has the same
// size as TFDS's (9,305 examples) but not the same members.
//
// Files that cannot be examples are skipped at listing time (Skipped); files that fail to decode are
// skipped later by Prepare, which reports both. A Source reading a zip keeps it open: Close it.
type Source struct {
	name        string
	root        string
	classes     []string
	entries     []entry
	skipped     SkipReport
	fingerprint string
	opts        SourceOptions
	zr          *zip.ReadCloser
}

// Name is "cats_vs_dogs" or "image_folder".
func (s *Source) Name() string { return s.name }

// Root is the zip file or folder the source reads.
func (s *Source) Root() string { return s.root }

// Classes are the class names; labels index them. cats_vs_dogs: ["cat", "dog"] (cat=0, dog=1, as
// TFDS's ClassLabel); image folders: the sub-folder names, sorted.
func (s *Source) Classes() []string { return append([]string(nil), s.classes...) }

// Len is the number of examples (after the listing-time skips).
func (s *Source) Len() int { return len(s.entries) }

// Example returns the i-th example in the source order.
func (s *Source) Example(i int) Example { return s.entries[i].Example }

// Skipped reports the files skipped while listing (SkipIgnored, SkipUnreadable, SkipEmpty,
// SkipNoJFIF, SkipTooLarge for files above MaxFileBytes).
func (s *Source) Skipped() SkipReport { return s.skipped }

// Fingerprint identifies the source's content for cache keys: for a zip, its absolute path, size and
// modification time; for a folder, a hash of every listed file's relative name, size and
// modification time. Any change to the data changes it.
func (s *Source) Fingerprint() string { return s.fingerprint }

// Close releases the zip file, if any.
func (s *Source) Close() error {
	if s.zr == nil {
		return nil
	}
	err := s.zr.Close()
	s.zr = nil
	return err
}

// ReadFile returns the bytes of the i-th example. Errors are *SkipError (SkipUnreadable or
// SkipTooLarge). It is safe for concurrent use.
func (s *Source) ReadFile(i int) ([]byte, error) {
	e := &s.entries[i]
	maxBytes := s.maxFileBytes()
	var rc io.ReadCloser
	var err error
	if e.zf != nil {
		rc, err = e.zf.Open()
	} else {
		rc, err = os.Open(e.path)
	}
	if err != nil {
		return nil, &SkipError{Reason: SkipUnreadable, Err: err}
	}
	defer func() { _ = rc.Close() }()
	data, err := io.ReadAll(io.LimitReader(rc, maxBytes+1))
	if err != nil {
		return nil, &SkipError{Reason: SkipUnreadable, Err: err}
	}
	if int64(len(data)) > maxBytes {
		return nil, skipErr(SkipTooLarge, "file above %d bytes", maxBytes)
	}
	return data, nil
}

func (s *Source) maxFileBytes() int64 {
	if s.opts.MaxFileBytes > 0 {
		return s.opts.MaxFileBytes
	}
	return DefaultMaxFileBytes
}

// finish sorts the candidates, fixes the seeded order and computes the fingerprint.
func (s *Source) finish(all []entry) {
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	perm := permutation(len(all), s.opts.OrderSeed)
	s.entries = make([]entry, len(all))
	for i, p := range perm {
		s.entries[i] = all[p]
	}
	sort.Slice(s.skipped.Files, func(i, j int) bool { return s.skipped.Files[i].Name < s.skipped.Files[j].Name })
}

// catsVsDogsNameRE is TFDS's pattern for cats_vs_dogs example names (after path normalisation);
// other archive members (Thumbs.db, the licence, the readme) are ignored.
var catsVsDogsNameRE = regexp.MustCompile(`^PetImages/(Cat|Dog)/[0-9]+\.jpg$`)

// catsVsDogsClasses are the class names of cats_vs_dogs, as TFDS's ClassLabel: cat=0, dog=1.
var catsVsDogsClasses = []string{"cat", "dog"}

func catsVsDogsLabel(name string) (int, bool) {
	m := catsVsDogsNameRE.FindStringSubmatch(name)
	if m == nil {
		return 0, false
	}
	if m[1] == "Cat" {
		return 0, true
	}
	return 1, true
}

// OpenCatsVsDogs opens the Microsoft Cats vs Dogs data (kagglecatsanddogs_5340.zip) the way TFDS's
// cats_vs_dogs builder reads it: members named PetImages/{Cat,Dog}/<digits>.jpg, label cat=0, dog=1,
// skipping files without "JFIF" in their first bytes (TFDS's rule; on the real zip it keeps 23,262 of
// 25,000 images). path is the zip, a folder holding an extracted PetImages/, or PetImages/ itself.
func OpenCatsVsDogs(path string, opts SourceOptions) (*Source, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cats_vs_dogs: %w", err)
	}
	if info.IsDir() {
		return openCatsVsDogsDir(path, opts)
	}
	return openCatsVsDogsZip(path, info, opts)
}

func jfifWindow(opts SourceOptions) int {
	if opts.JFIFWindow > 0 {
		return opts.JFIFWindow
	}
	return DefaultJFIFWindow
}

// checkJFIF applies TFDS's rule to an open file.
func checkJFIF(r io.Reader, window int) *SkipError {
	head := make([]byte, window)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return &SkipError{Reason: SkipUnreadable, Err: err}
	}
	if !bytes.Contains(head[:n], []byte("JFIF")) {
		return skipErr(SkipNoJFIF, `no "JFIF" in the first %d bytes`, window)
	}
	return nil
}

func openCatsVsDogsZip(zipPath string, info fs.FileInfo, opts SourceOptions) (*Source, error) {
	abs, err := filepath.Abs(zipPath)
	if err != nil {
		return nil, fmt.Errorf("cats_vs_dogs: %w", err)
	}
	zr, err := zip.OpenReader(abs)
	if err != nil {
		return nil, fmt.Errorf("cats_vs_dogs: reading zip %s: %w", abs, err)
	}
	s := &Source{name: "cats_vs_dogs", root: abs, classes: catsVsDogsClasses, opts: opts, zr: zr,
		fingerprint: fmt.Sprintf("zip:%s:%d:%d", abs, info.Size(), info.ModTime().UnixNano())}
	window := jfifWindow(opts)
	var all []entry
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || strings.HasSuffix(f.Name, "/") {
			continue // TFDS's archive iterator drops directories.
		}
		name := path.Clean(strings.ReplaceAll(f.Name, `\`, "/"))
		label, ok := catsVsDogsLabel(name)
		if !ok {
			s.skipped.add(name, SkipIgnored, "not a PetImages/{Cat,Dog}/<n>.jpg member")
			continue
		}
		e := entry{Example: Example{Name: name, Label: label}, size: int64(f.UncompressedSize64), zf: f}
		if skip := s.checkEntry(&e, window); skip != nil {
			s.skipped.add(name, skip.Reason, skip.Error())
			continue
		}
		all = append(all, e)
	}
	if len(all) == 0 && s.skipped.Total() == 0 {
		_ = zr.Close()
		return nil, fmt.Errorf("cats_vs_dogs: %s has no PetImages/{Cat,Dog}/<n>.jpg members", abs)
	}
	s.finish(all)
	return s, nil
}

// checkEntry runs the listing-time checks of a cats_vs_dogs candidate: size, then TFDS's JFIF rule.
func (s *Source) checkEntry(e *entry, window int) *SkipError {
	if e.size == 0 {
		return skipErr(SkipEmpty, "zero bytes")
	}
	if e.size > s.maxFileBytes() {
		return skipErr(SkipTooLarge, "file of %d bytes, above %d", e.size, s.maxFileBytes())
	}
	var rc io.ReadCloser
	var err error
	if e.zf != nil {
		rc, err = e.zf.Open()
	} else {
		rc, err = os.Open(e.path)
	}
	if err != nil {
		return &SkipError{Reason: SkipUnreadable, Err: err}
	}
	defer func() { _ = rc.Close() }()
	return checkJFIF(rc, window)
}

func openCatsVsDogsDir(dir string, opts SourceOptions) (*Source, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("cats_vs_dogs: %w", err)
	}
	base := abs
	if filepath.Base(abs) == "PetImages" {
		base = filepath.Dir(abs)
	}
	pet := filepath.Join(base, "PetImages")
	for _, sub := range []string{"Cat", "Dog"} {
		info, err := os.Stat(filepath.Join(pet, sub))
		if err != nil {
			return nil, fmt.Errorf("cats_vs_dogs: want an extracted PetImages/{Cat,Dog} under %s: %w", abs, err)
		}
		if !info.IsDir() {
			return nil, fmt.Errorf("cats_vs_dogs: %s is not a directory", filepath.Join(pet, sub))
		}
	}
	s := &Source{name: "cats_vs_dogs", root: pet, classes: catsVsDogsClasses, opts: opts}
	window := jfifWindow(opts)
	fp := sha256.New()
	all, err := s.walkFolder(pet, base, folderLayout{
		candidate:      catsVsDogsLabel,
		notCandidate:   "not a PetImages/{Cat,Dog}/<n>.jpg file",
		fingerprintAll: true,
		candidateDirs:  true,
		accept:         func(e *entry) *SkipError { return s.checkEntry(e, window) },
	}, fp)
	if err != nil {
		return nil, fmt.Errorf("cats_vs_dogs: listing %s: %w", pet, err)
	}
	s.fingerprint = "dir:" + pet + ":" + hex.EncodeToString(fp.Sum(nil))
	s.finish(all)
	return s, nil
}

// folderLayout is how walkFolder lists one kind of image folder.
type folderLayout struct {
	// candidate reports whether a file's name (relative, "/"-separated) could be an example, and its label.
	candidate func(name string) (label int, ok bool)
	// notCandidate is the detail recorded for the files that are not (SkipIgnored).
	notCandidate string
	// fingerprintAll makes every regular file enter the fingerprint, candidate or not (cats_vs_dogs:
	// a stray file changes the cache key, as it always has); otherwise candidates only.
	fingerprintAll bool
	// candidateDirs: a directory with a candidate's name is a skipped example (cats_vs_dogs' layout
	// names files only); otherwise every directory is walked into.
	candidateDirs bool
	// accept decides on a regular candidate file: nil keeps it as an example, else why it is skipped.
	accept func(e *entry) *SkipError
}

// walkFolder lists root, naming files relative to base: every file that does not become an example
// is recorded in s.skipped with its reason, and the fingerprint lines (name, size, modification
// time) go to fp. Symbolic links are followed to files, not into directories.
// (One piece: the walk's callback decides each file's fate in one place, with its skip reason.)
func (s *Source) walkFolder(root, base string, l folderLayout, fp io.Writer) ([]entry, error) {
	var all []entry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, walkErr error) error {
		rel, _ := filepath.Rel(base, p)
		name := filepath.ToSlash(rel)
		if walkErr != nil {
			if p == root {
				return walkErr
			}
			s.skipped.add(name, SkipUnreadable, walkErr.Error())
			return nil
		}
		if p == root {
			return nil
		}
		label, isCandidate := l.candidate(name)
		if d.IsDir() && !(l.candidateDirs && isCandidate) {
			return nil // walked into
		}
		info, statErr := os.Stat(p) // follows symbolic links.
		switch {
		case statErr != nil:
			if isCandidate {
				s.skipped.add(name, SkipUnreadable, statErr.Error())
			} else {
				s.skipped.add(name, SkipIgnored, statErr.Error())
			}
			return nil
		case info.IsDir():
			if isCandidate && l.candidateDirs {
				s.skipped.add(name, SkipUnreadable, "is a directory")
				if d.IsDir() {
					return fs.SkipDir
				}
			}
			return nil // a symbolic link to a directory: not followed, as Keras does by default.
		case !info.Mode().IsRegular():
			if isCandidate {
				s.skipped.add(name, SkipUnreadable, "not a regular file: "+info.Mode().String())
			} else {
				s.skipped.add(name, SkipIgnored, l.notCandidate+" (not a regular file)")
			}
			return nil
		}
		if isCandidate || l.fingerprintAll {
			_, _ = fmt.Fprintf(fp, "%s\t%d\t%d\n", name, info.Size(), info.ModTime().UnixNano())
		}
		if !isCandidate {
			s.skipped.add(name, SkipIgnored, l.notCandidate)
			return nil
		}
		e := entry{Example: Example{Name: name, Label: label}, size: info.Size(), path: p}
		if skip := l.accept(&e); skip != nil {
			s.skipped.add(name, skip.Reason, skip.Error())
			return nil
		}
		all = append(all, e)
		return nil
	})
	return all, err
}

// imageExtensions are the extensions Keras's image_dataset_from_directory lists (case-insensitive).
var imageExtensions = map[string]bool{".bmp": true, ".gif": true, ".jpeg": true, ".jpg": true, ".png": true}

// IsImageName reports whether a file name has one of the image extensions image folders are read
// with (Keras' image_dataset_from_directory's: bmp, gif, jpeg, jpg, png; any case).
func IsImageName(name string) bool { return imageExtensions[strings.ToLower(filepath.Ext(name))] }

// OpenImageFolder opens a folder with one sub-folder per class, as Keras's
// image_dataset_from_directory reads it: classes are the sub-folder names sorted (label = index),
// images are the files with an image extension (.bmp .gif .jpeg .jpg .png, any case) anywhere below
// their class folder. Hidden sub-folders (".ipynb_checkpoints") are not classes. The TFDS JFIF rule
// does not apply; whether a file is an image is decided by its magic bytes when it is decoded, so a
// PNG named .jpg is decoded and a text file named .jpg is skipped (SkipNotImage).
func OpenImageFolder(dir string, opts SourceOptions) (*Source, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("image folder: %w", err)
	}
	info, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("image folder: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("image folder: %s is not a directory", abs)
	}
	top, err := os.ReadDir(abs)
	if err != nil {
		return nil, fmt.Errorf("image folder: %w", err)
	}
	s := &Source{name: "image_folder", root: abs, opts: opts}
	fp := sha256.New()
	for _, d := range top {
		p := filepath.Join(abs, d.Name())
		if strings.HasPrefix(d.Name(), ".") {
			continue
		}
		st, err := os.Stat(p)
		if err == nil && st.IsDir() {
			s.classes = append(s.classes, d.Name())
			continue
		}
		s.skipped.add(d.Name(), SkipIgnored, "not inside a class folder")
	}
	if len(s.classes) == 0 {
		return nil, fmt.Errorf("image folder: %s has no class sub-folders", abs)
	}
	sort.Strings(s.classes)
	var all []entry
	for label, class := range s.classes {
		classDir := filepath.Join(abs, class)
		found, err := s.walkFolder(classDir, abs, folderLayout{
			candidate:    func(name string) (int, bool) { return label, IsImageName(name) },
			notCandidate: "no image extension",
			accept: func(e *entry) *SkipError {
				switch {
				case e.size == 0:
					return skipErr(SkipEmpty, "zero bytes")
				case e.size > s.maxFileBytes():
					return skipErr(SkipTooLarge, "file of %d bytes, above %d", e.size, s.maxFileBytes())
				}
				return nil
			},
		}, fp)
		all = append(all, found...)
		if err != nil {
			return nil, fmt.Errorf("image folder: listing %s: %w", classDir, err)
		}
	}
	_, _ = fmt.Fprintf(fp, "classes\t%s\n", strings.Join(s.classes, "\t"))
	s.fingerprint = "dir:" + abs + ":" + hex.EncodeToString(fp.Sum(nil))
	s.finish(all)
	return s, nil
}
