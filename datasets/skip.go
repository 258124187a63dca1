package datasets

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// SkipReason says why a file did not become an example. Every skipped file is counted under exactly
// one reason, so that a run on dirty data can be audited (SkipReport).
type SkipReason string

// Skip reasons, in the order the checks run.
const (
	// SkipIgnored: not a candidate file, silently ignored as TFDS and Keras do, but counted: a name
	// outside TFDS's cats_vs_dogs pattern PetImages/(Cat|Dog)/<digits>.jpg (Thumbs.db, readme), a file
	// without an image extension in an image folder, or a file outside the class sub-folders.
	// SkipReport.Total does not include it.
	SkipIgnored SkipReason = "ignored"
	// SkipUnreadable: the file cannot be opened or read (a directory with an image name, a dangling
	// symbolic link, permission denied, an I/O or zip error).
	SkipUnreadable SkipReason = "unreadable"
	// SkipEmpty: zero bytes. TFDS's JFIF rule drops these too (they are part of its 1,738).
	SkipEmpty SkipReason = "empty"
	// SkipNoJFIF: TFDS's cats_vs_dogs rule, "JFIF" not among the file's first bytes (see JFIFWindow).
	SkipNoJFIF SkipReason = "no_jfif"
	// SkipNotImage: the magic bytes are of no supported format (JPEG, PNG, GIF, BMP), whatever the
	// file's extension says (a text file named .jpg).
	SkipNotImage SkipReason = "not_image"
	// SkipTooLarge: the header announces more pixels than the configured maximum (a decompression
	// bomb guard that runs before any pixel is decoded).
	SkipTooLarge SkipReason = "too_large"
	// SkipUnsupported: a known format in a variant the decoders do not handle (arithmetic-coded or
	// 12-bit JPEG, compressed BMP).
	SkipUnsupported SkipReason = "unsupported"
	// SkipCorrupt: the header or the data fails to decode (truncated files, bad markers).
	SkipCorrupt SkipReason = "corrupt"
)

// Skipped is one skipped file.
type Skipped struct {
	Name   string     // path relative to the source root, with "/" separators.
	Reason SkipReason // why.
	Detail string     // the underlying error, if any.
}

// SkipError is the error of a file that is skipped rather than failing the whole run.
type SkipError struct {
	Reason SkipReason
	Err    error
}

func (e *SkipError) Error() string {
	if e.Err == nil {
		return string(e.Reason)
	}
	return fmt.Sprintf("%s: %v", e.Reason, e.Err)
}

func (e *SkipError) Unwrap() error { return e.Err }

func skipErr(reason SkipReason, format string, args ...any) *SkipError {
	return &SkipError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// SkipReport counts skipped files per reason and lists them.
type SkipReport struct {
	Counts map[SkipReason]int
	Files  []Skipped
}

func (r *SkipReport) add(name string, reason SkipReason, detail string) {
	if r.Counts == nil {
		r.Counts = make(map[SkipReason]int)
	}
	r.Counts[reason]++
	r.Files = append(r.Files, Skipped{Name: name, Reason: reason, Detail: detail})
}

// Merged returns the report of r's and o's files together.
func (r SkipReport) Merged(o SkipReport) SkipReport {
	var out SkipReport
	out.merge(r)
	out.merge(o)
	return out
}

func (r *SkipReport) merge(o SkipReport) {
	for _, f := range o.Files {
		r.add(f.Name, f.Reason, f.Detail)
	}
}

// Total is the number of skipped files, not counting SkipIgnored ones (files that were never
// candidate images).
func (r SkipReport) Total() int {
	total := 0
	for reason, n := range r.Counts {
		if reason != SkipIgnored {
			total += n
		}
	}
	return total
}

// String lists the counts per reason, sorted by reason, e.g. "empty=2 no_jfif=1736".
func (r SkipReport) String() string {
	if len(r.Counts) == 0 {
		return "none"
	}
	reasons := make([]string, 0, len(r.Counts))
	for reason := range r.Counts {
		reasons = append(reasons, string(reason))
	}
	sort.Strings(reasons)
	parts := make([]string, len(reasons))
	for i, reason := range reasons {
		parts[i] = fmt.Sprintf("%s=%d", reason, r.Counts[SkipReason(reason)])
	}
	return strings.Join(parts, " ")
}

// WriteTSV writes every skipped file, sorted by name, as tab-separated "file", "reason" and "detail"
// columns under a header line (tabs and newlines inside details become spaces).
func (r SkipReport) WriteTSV(w io.Writer) error {
	files := slices.Clone(r.Files)
	sort.SliceStable(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	clean := strings.NewReplacer("\t", " ", "\n", " ", "\r", " ")
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "file\treason\tdetail")
	for _, f := range files {
		fmt.Fprintf(bw, "%s\t%s\t%s\n", clean.Replace(f.Name), f.Reason, clean.Replace(f.Detail))
	}
	return bw.Flush()
}
