package datasets

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/learnresize/learnresize/internal/fileutil"
)

// The Microsoft Cats vs Dogs archive that TFDS's cats_vs_dogs (4.0.1) downloads.
//
// The size is TFDS's (786.67 MiB), and the one servers report. The SHA-256 is the checksum GoMLX's
// dogsvscats example verifies this same URL against (examples/dogsvscats/dogsvscats.go,
// DownloadChecksum): the copy of TFDS's url_checksums/cats_vs_dogs.txt we could consult still lists
// the older kagglecatsanddogs_3367a.zip, so the hash below is not TFDS's own record.
const (
	CatsVsDogsURL     = "https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/kagglecatsanddogs_5340.zip"
	CatsVsDogsZipName = "kagglecatsanddogs_5340.zip"
	CatsVsDogsSize    = 824_887_076
	CatsVsDogsSHA256  = "b7974bd00a84a99921f36ee4403f089853777b5ae8d151c76a86e64900334af9"
)

// DataDirEnv names the environment variable that overrides the default data directory.
const DataDirEnv = "LEARNRESIZE_DATA_DIR"

// SHA256Env names the environment variable that overrides CatsVsDogsSHA256 (docs/DATASETS.md says
// why that value is the first suspect if a genuine download fails it).
const SHA256Env = "LEARNRESIZE_CATS_VS_DOGS_SHA256"

// DataDir resolves the directory for downloads and caches: dir if not empty, else $LEARNRESIZE_DATA_DIR,
// else os.UserCacheDir()/learnresize (~/.cache/learnresize on Linux).
func DataDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	if env := os.Getenv(DataDirEnv); env != "" {
		return env, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no data directory: set %s or pass one (%w)", DataDirEnv, err)
	}
	return filepath.Join(cache, "learnresize"), nil
}

// DownloadOptions configure Download.
type DownloadOptions struct {
	// Size is the expected size in bytes (0: not checked).
	Size int64
	// SHA256 is the expected hex SHA-256 of the whole file ("": not checked).
	SHA256 string
	// Progress receives a line every ProgressInterval (bytes, rate, ETA) and a last one at the end;
	// nil is silent.
	Progress io.Writer
	// ProgressInterval defaults to 5 s.
	ProgressInterval time.Duration
	// Client defaults to http.DefaultClient.
	Client *http.Client
}

// Download fetches url into dst, the way a long download over a flaky link should go: bytes go to
// dst+".part"; an existing .part is resumed with an HTTP Range request (restarted from zero if the
// server ignores the range); the size and SHA-256 are verified over the whole file; only then is the
// .part fsynced and renamed to dst, so dst never holds a partial or corrupt file.
//
// If dst exists, Download checks it instead: its size, and its SHA-256 once (a user may have put a
// file there by hand); a stamp file dst+".verified" records a file that passed, so later calls only
// compare size and modification time with it. An interrupted transfer (connection lost, ctx
// cancelled) keeps the .part for the next call; a file that fails verification (too long, wrong
// hash, a server whose file is shorter than expected) is deleted, since resuming it could never
// succeed. Two processes must not download to the same dst at the same time.
//
// (One piece: resuming, transferring and verifying all act on the one .part file and its running
// hash, in the order a reader follows.)
func Download(ctx context.Context, url, dst string, opts DownloadOptions) error {
	if info, err := os.Stat(dst); err == nil {
		return checkExisting(dst, info, opts)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	part := dst + ".part"
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = f.Close()
		}
	}()
	hasher := sha256.New()
	offset, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	if opts.Size > 0 && offset > opts.Size {
		offset = 0 // longer than the file can be: start over.
	}
	if offset > 0 {
		if _, err := io.Copy(hasher, io.NewSectionReader(f, 0, offset)); err != nil {
			return fmt.Errorf("download: reading %s to resume: %w", part, err)
		}
	}
	restart := func() error {
		offset = 0
		hasher.Reset()
		return f.Truncate(0)
	}
	if offset == 0 {
		if err := f.Truncate(0); err != nil {
			return fmt.Errorf("download: %w", err)
		}
	}

	if opts.Size == 0 || offset < opts.Size {
		body, err := openRange(ctx, opts.Client, url, offset, opts.Size, restart)
		var short *shortServerError
		if errors.As(err, &short) {
			_ = f.Close()
			closed = true
			_ = os.Remove(part)
			return fmt.Errorf("%w: deleted the partial download %s", err, part)
		}
		if err != nil {
			return err
		}
		if body != nil {
			defer func() { _ = body.Close() }()
			prog := newProgress(opts.Progress, filepath.Base(dst), opts.Size, offset, opts.ProgressInterval)
			if _, err := f.Seek(offset, io.SeekStart); err != nil {
				return fmt.Errorf("download: %w", err)
			}
			n, copyErr := copyWithProgress(io.MultiWriter(f, hasher), body, prog)
			offset += n
			prog.finish(offset)
			if copyErr != nil {
				_ = f.Sync()
				return fmt.Errorf("download of %s interrupted after %d bytes (kept %s: call again to resume): %w", url, offset, part, copyErr)
			}
		}
	}

	if opts.Size > 0 && offset != opts.Size {
		if offset < opts.Size {
			_ = f.Sync()
			return fmt.Errorf("download of %s: short, %d of %d bytes (kept %s: call again to resume)", url, offset, opts.Size, part)
		}
		_ = f.Close()
		closed = true
		_ = os.Remove(part)
		return fmt.Errorf("download of %s: %d bytes, want %d: deleted", url, offset, opts.Size)
	}
	if want := strings.ToLower(strings.TrimSpace(opts.SHA256)); want != "" {
		if got := hex.EncodeToString(hasher.Sum(nil)); got != want {
			_ = f.Close()
			closed = true
			_ = os.Remove(part)
			return fmt.Errorf("download of %s: SHA-256 %s, want %s: corrupt, deleted (if the archive changed upstream, "+
				"give its checksum: %s or learnresize download -sha256)", url, got, want, SHA256Env)
		}
	}
	// The .part is not an anonymous temporary file: it keeps its name across runs so that a later
	// call resumes it. Once verified it is committed like every other file here.
	closed = true
	if err := fileutil.CommitFile(f, dst); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	if info, err := os.Stat(dst); err == nil && opts.SHA256 != "" {
		writeVerifiedStamp(dst, info, opts.SHA256)
	}
	return nil
}

// checkExisting verifies a dst that is already there (see Download).
func checkExisting(dst string, info os.FileInfo, opts DownloadOptions) error {
	if opts.Size > 0 && info.Size() != opts.Size {
		return fmt.Errorf("download: %s exists with %d bytes, want %d: it is not the expected file: delete it and run again to download it",
			dst, info.Size(), opts.Size)
	}
	want := strings.ToLower(strings.TrimSpace(opts.SHA256))
	if want == "" || readVerifiedStamp(dst) == verifiedStamp(info, want) {
		return nil
	}
	f, err := os.Open(dst)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("download: reading %s to verify it: %w", dst, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("download: %s has the expected size but SHA-256 %s, want %s: it is damaged or another file: "+
			"delete it and run again to download it (if the archive changed upstream, give its checksum: %s or learnresize download -sha256)",
			dst, got, want, SHA256Env)
	}
	writeVerifiedStamp(dst, info, want)
	return nil
}

// verifiedStamp is the content of dst+".verified" for a file that matched sum.
func verifiedStamp(info os.FileInfo, sum string) string {
	return fmt.Sprintf("sha256 %s size %d mtime %d\n", sum, info.Size(), info.ModTime().UnixNano())
}

func readVerifiedStamp(dst string) string {
	b, _ := os.ReadFile(dst + ".verified")
	return string(b)
}

func writeVerifiedStamp(dst string, info os.FileInfo, sum string) {
	_ = os.WriteFile(dst+".verified", []byte(verifiedStamp(info, strings.ToLower(sum))), 0o644)
}

// openRange starts the transfer at offset. It returns a nil body when nothing is left to fetch (the
// server answers 416 to a range that starts at the end of the file).
func openRange(ctx context.Context, client *http.Client, url string, offset, expected int64, restart func() error) (io.ReadCloser, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	req.Header.Set("User-Agent", "learnresize-datasets")
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("download of %s: %w", url, ctx.Err())
		}
		return nil, fmt.Errorf("download of %s failed (no network here?): %w; without the internet, fetch the file elsewhere "+
			"and put it in the data directory, or train on a local copy with -data (a zip, a PetImages folder, or any image folder)", url, err)
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
		if start, ok := contentRangeStart(resp.Header.Get("Content-Range")); !ok || start != offset {
			_ = resp.Body.Close()
			return nil, fmt.Errorf("download of %s: asked for bytes from %d, server sent Content-Range %q",
				url, offset, resp.Header.Get("Content-Range"))
		}
		return resp.Body, nil
	case resp.StatusCode == http.StatusOK:
		if offset > 0 { // the server ignored the Range header: start over.
			if err := restart(); err != nil {
				_ = resp.Body.Close()
				return nil, fmt.Errorf("download: %w", err)
			}
		}
		return resp.Body, nil
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && offset > 0:
		_ = resp.Body.Close()
		// The server's file ends at or before offset. If that is short of the expected size, asking
		// again can never help: say so (the caller deletes the .part).
		if total, ok := contentRangeTotal(resp.Header.Get("Content-Range")); ok && expected > 0 && total < expected {
			return nil, &shortServerError{url: url, total: total, want: expected}
		}
		return nil, nil // the .part is already complete; verification decides.
	default:
		_ = resp.Body.Close()
		return nil, fmt.Errorf("download of %s: HTTP %s", url, resp.Status)
	}
}

// shortServerError: the server's file is shorter than the expected size.
type shortServerError struct {
	url         string
	total, want int64
}

func (e *shortServerError) Error() string {
	return fmt.Sprintf("download of %s: the server's file has %d bytes, want %d: it serves another (or a truncated) file, "+
		"so resuming cannot succeed; try again later or another mirror", e.url, e.total, e.want)
}

// contentRangeTotal parses the total of "bytes */total" or "bytes start-end/total".
func contentRangeTotal(h string) (int64, bool) {
	_, totalStr, ok := strings.Cut(strings.TrimSpace(h), "/")
	if !ok {
		return 0, false
	}
	total, err := strconv.ParseInt(strings.TrimSpace(totalStr), 10, 64)
	return total, err == nil
}

// contentRangeStart parses the first byte of "bytes start-end/total".
func contentRangeStart(h string) (int64, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes ")
	if !ok {
		return 0, false
	}
	startStr, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	start, err := strconv.ParseInt(strings.TrimSpace(startStr), 10, 64)
	return start, err == nil
}

func copyWithProgress(dst io.Writer, src io.Reader, prog *progress) (int64, error) {
	buf := make([]byte, 1<<20)
	var n int64
	for {
		m, err := src.Read(buf)
		if m > 0 {
			if _, werr := dst.Write(buf[:m]); werr != nil {
				return n, werr
			}
			n += int64(m)
			prog.update(prog.start + n)
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// CatsVsDogsOptions configure CatsVsDogs.
type CatsVsDogsOptions struct {
	// DataDir holds the downloaded zip (see DataDir for the default).
	DataDir string
	// URL overrides CatsVsDogsURL (a mirror, or a test server). With an override, Size and SHA256
	// are checked only if set; with the default URL, zero values mean CatsVsDogsSize and
	// CatsVsDogsSHA256. An empty SHA256 takes $LEARNRESIZE_CATS_VS_DOGS_SHA256 when that is set.
	URL    string
	Size   int64
	SHA256 string
	// Progress receives download progress lines (nil: silent).
	Progress io.Writer
	// Client defaults to http.DefaultClient.
	Client *http.Client
	// Source configures the opened Source.
	Source SourceOptions
}

// CatsVsDogs returns the cats_vs_dogs Source, downloading the Microsoft archive into the data
// directory first if it is not there (with resume and verification, see Download). To use a zip or
// an extracted PetImages/ folder from elsewhere, call OpenCatsVsDogs.
func CatsVsDogs(ctx context.Context, opts CatsVsDogsOptions) (*Source, error) {
	dir, err := DataDir(opts.DataDir)
	if err != nil {
		return nil, err
	}
	url, size, sum := opts.URL, opts.Size, opts.SHA256
	if url == "" {
		url = CatsVsDogsURL
		if size == 0 {
			size = CatsVsDogsSize
		}
		if sum == "" {
			sum = CatsVsDogsSHA256
		}
	}
	if env := os.Getenv(SHA256Env); env != "" && opts.SHA256 == "" {
		sum = env
	}
	dst := filepath.Join(dir, CatsVsDogsZipName)
	if err := Download(ctx, url, dst, DownloadOptions{Size: size, SHA256: sum, Progress: opts.Progress, Client: opts.Client}); err != nil {
		if !errors.Is(err, context.Canceled) {
			err = fmt.Errorf("%w\n(the data directory is %s: a zip fetched by hand goes there as %s, or pass it with -data)", err, dir, CatsVsDogsZipName)
		}
		return nil, err
	}
	return OpenCatsVsDogs(dst, opts.Source)
}
