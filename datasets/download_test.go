package datasets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testServer serves content on loopback in one of several behaviours and records the Range header
// of every request.
type testServer struct {
	*httptest.Server
	mu      sync.Mutex
	content []byte
	mode    string // "range" (honours Range), "norange" (always 200), "short" (cuts the body), "404".
	ranges  []string
}

func newTestServer(t *testing.T, content []byte, mode string) *testServer {
	s := &testServer{content: content, mode: mode}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.ranges = append(s.ranges, r.Header.Get("Range"))
		mode, content := s.mode, s.content
		s.mu.Unlock()
		switch mode {
		case "range":
			http.ServeContent(w, r, "data.zip", time.Unix(0, 0), bytes.NewReader(content))
		case "norange":
			w.Header().Set("Content-Length", itoa(len(content)))
			_, _ = w.Write(content)
		case "short":
			w.Header().Set("Content-Length", itoa(len(content)))
			_, _ = w.Write(content[:len(content)/3])
			// Returning early with a declared length makes the server close the connection: the
			// client sees an unexpected EOF, as with a dropped link.
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *testServer) setMode(mode string) { s.mu.Lock(); s.mode = mode; s.mu.Unlock() }

func (s *testServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

func itoa(n int) string { return strconv.Itoa(n) }

func testContent(n int) ([]byte, string) {
	content := make([]byte, n)
	for i := range content {
		content[i] = byte(i*31 + i/255)
	}
	sum := sha256.Sum256(content)
	return content, hex.EncodeToString(sum[:])
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

func TestDownload(t *testing.T) {
	content, sum := testContent(300_000)
	ctx := context.Background()

	t.Run("fresh", func(t *testing.T) {
		srv := newTestServer(t, content, "range")
		dst := filepath.Join(t.TempDir(), "sub", "data.zip")
		var progress bytes.Buffer
		if err := Download(ctx, srv.URL, dst, DownloadOptions{Size: int64(len(content)), SHA256: sum, Progress: &progress}); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(dst)
		if !bytes.Equal(got, content) {
			t.Error("downloaded bytes differ")
		}
		if exists(dst + ".part") {
			t.Error(".part left behind")
		}
		if out := progress.String(); !strings.Contains(out, "292.97 KiB / 292.97 KiB (100.0%)") || !strings.Contains(out, "done in") {
			t.Errorf("progress output %q", out)
		}
		// A second call trusts the verified file and makes no request.
		if err := Download(ctx, srv.URL, dst, DownloadOptions{Size: int64(len(content)), SHA256: sum}); err != nil {
			t.Fatal(err)
		}
		if n := len(srv.requests()); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})

	t.Run("resume with Range", func(t *testing.T) {
		srv := newTestServer(t, content, "range")
		dst := filepath.Join(t.TempDir(), "data.zip")
		writeFile(t, dst+".part", content[:100_000])
		if err := Download(ctx, srv.URL, dst, DownloadOptions{Size: int64(len(content)), SHA256: sum}); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(dst)
		if !bytes.Equal(got, content) {
			t.Error("resumed bytes differ")
		}
		if r := srv.requests(); len(r) != 1 || r[0] != "bytes=100000-" {
			t.Errorf("requests %q, want one for bytes=100000-", r)
		}
	})

	t.Run("server ignores Range", func(t *testing.T) {
		srv := newTestServer(t, content, "norange")
		dst := filepath.Join(t.TempDir(), "data.zip")
		writeFile(t, dst+".part", content[:100_000])
		if err := Download(ctx, srv.URL, dst, DownloadOptions{Size: int64(len(content)), SHA256: sum}); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(dst)
		if !bytes.Equal(got, content) {
			t.Error("restarted download differs")
		}
	})

	t.Run("interrupted, then resumed", func(t *testing.T) {
		srv := newTestServer(t, content, "short")
		dst := filepath.Join(t.TempDir(), "data.zip")
		err := Download(ctx, srv.URL, dst, DownloadOptions{Size: int64(len(content)), SHA256: sum})
		if err == nil {
			t.Fatal("short download: no error")
		}
		if exists(dst) {
			t.Fatal("final file written after a short download")
		}
		part, _ := os.ReadFile(dst + ".part")
		if len(part) == 0 || len(part) >= len(content) || !bytes.Equal(part, content[:len(part)]) {
			t.Fatalf(".part has %d bytes, want a proper prefix", len(part))
		}
		srv.setMode("range")
		if err := Download(ctx, srv.URL, dst, DownloadOptions{Size: int64(len(content)), SHA256: sum}); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(dst)
		if !bytes.Equal(got, content) {
			t.Error("resumed bytes differ")
		}
		if r := srv.requests(); len(r) != 2 || r[1] != "bytes="+itoa(len(part))+"-" {
			t.Errorf("requests %q", r)
		}
	})

	t.Run("corrupt", func(t *testing.T) {
		bad := append([]byte(nil), content...)
		bad[len(bad)/2] ^= 1
		srv := newTestServer(t, bad, "range")
		dst := filepath.Join(t.TempDir(), "data.zip")
		err := Download(ctx, srv.URL, dst, DownloadOptions{Size: int64(len(content)), SHA256: sum})
		if err == nil || !strings.Contains(err.Error(), "SHA-256") {
			t.Fatalf("err = %v, want a SHA-256 mismatch", err)
		}
		if exists(dst) || exists(dst+".part") {
			t.Error("corrupt download left a file")
		}
	})

	t.Run("corrupt resumed prefix", func(t *testing.T) {
		srv := newTestServer(t, content, "range")
		dst := filepath.Join(t.TempDir(), "data.zip")
		prefix := append([]byte(nil), content[:1000]...)
		prefix[10] ^= 1
		writeFile(t, dst+".part", prefix)
		if err := Download(ctx, srv.URL, dst, DownloadOptions{Size: int64(len(content)), SHA256: sum}); err == nil {
			t.Fatal("no error")
		}
		if exists(dst) || exists(dst+".part") {
			t.Error("corrupt download left a file")
		}
	})

	t.Run("longer than expected", func(t *testing.T) {
		srv := newTestServer(t, content, "range")
		dst := filepath.Join(t.TempDir(), "data.zip")
		if err := Download(ctx, srv.URL, dst, DownloadOptions{Size: int64(len(content) - 1)}); err == nil {
			t.Fatal("no error")
		}
		if exists(dst) || exists(dst+".part") {
			t.Error("over-long download left a file")
		}
	})

	t.Run("HTTP 404", func(t *testing.T) {
		srv := newTestServer(t, content, "404")
		dst := filepath.Join(t.TempDir(), "data.zip")
		if err := Download(ctx, srv.URL, dst, DownloadOptions{}); err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("err = %v, want HTTP 404", err)
		}
		if exists(dst) {
			t.Error("final file written")
		}
	})

	t.Run("existing file of the wrong size", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "data.zip")
		writeFile(t, dst, []byte("short"))
		if err := Download(ctx, "http://127.0.0.1:1/never", dst, DownloadOptions{Size: 10}); err == nil {
			t.Fatal("no error")
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		srv := newTestServer(t, content, "range")
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		dst := filepath.Join(t.TempDir(), "data.zip")
		if err := Download(cctx, srv.URL, dst, DownloadOptions{Size: int64(len(content))}); err == nil {
			t.Fatal("no error")
		}
		if exists(dst) {
			t.Error("final file written")
		}
	})
}

func TestCatsVsDogsDownloadAndOpen(t *testing.T) {
	files := catsVsDogsFiles(t)
	var names []string
	for name := range files {
		names = append(names, name)
	}
	zipData := zipBytes(t, sortedStrings(names), files)
	sum := sha256.Sum256(zipData)
	srv := newTestServer(t, zipData, "range")
	dir := t.TempDir()
	opts := CatsVsDogsOptions{DataDir: dir, URL: srv.URL + "/kagglecatsanddogs_5340.zip", Size: int64(len(zipData)), SHA256: hex.EncodeToString(sum[:])}
	for range 2 {
		src, err := CatsVsDogs(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if src.Len() != 9 || src.Skipped().Counts[SkipNoJFIF] != 2 {
			t.Errorf("%d examples, skips %v", src.Len(), src.Skipped())
		}
		_ = src.Close()
	}
	if n := len(srv.requests()); n != 1 {
		t.Errorf("%d requests, want 1 (the second call reuses the zip)", n)
	}
	if !exists(filepath.Join(dir, CatsVsDogsZipName)) {
		t.Error("zip not in the data directory")
	}
}

func TestDataDir(t *testing.T) {
	t.Setenv(DataDirEnv, "/tmp/from-env")
	if got, _ := DataDir(""); got != "/tmp/from-env" {
		t.Errorf("DataDir(\"\") = %q with %s set", got, DataDirEnv)
	}
	if got, _ := DataDir("/explicit"); got != "/explicit" {
		t.Errorf("DataDir(\"/explicit\") = %q", got)
	}
	t.Setenv(DataDirEnv, "")
	got, err := DataDir("")
	if err == nil && filepath.Base(got) != "learnresize" {
		t.Errorf("default DataDir = %q", got)
	}
}

// TestDownloadEdgeCases: a file of the right size but wrong content already in place, a server whose
// file is shorter than expected, and no network: each ends with an error saying what to do, never a
// silent acceptance or an endless "call again".
func TestDownloadEdgeCases(t *testing.T) {
	content, sum := testContent(300_000)
	ctx := context.Background()

	t.Run("existing file with the right size and the wrong content", func(t *testing.T) {
		srv := newTestServer(t, content, "range")
		dst := filepath.Join(t.TempDir(), "data.zip")
		wrong := append([]byte(nil), content...)
		wrong[1234] ^= 1
		writeFile(t, dst, wrong)
		err := Download(ctx, srv.URL, dst, DownloadOptions{Size: int64(len(content)), SHA256: sum})
		if err == nil || !strings.Contains(err.Error(), "expected size but SHA-256") || !strings.Contains(err.Error(), "delete it") {
			t.Errorf("wrong content in place: %v", err)
		}
		writeFile(t, dst, content)
		if err := Download(ctx, srv.URL, dst, DownloadOptions{Size: int64(len(content)), SHA256: sum}); err != nil {
			t.Fatal(err)
		}
		if !exists(dst + ".verified") {
			t.Error("no verification stamp after a good check")
		}
		if n := len(srv.requests()); n != 0 {
			t.Errorf("%d requests for a file already in place", n)
		}
	})

	t.Run("server file shorter than expected", func(t *testing.T) {
		srv := newTestServer(t, content[:100_000], "range") // a complete response of a truncated file
		dst := filepath.Join(t.TempDir(), "data.zip")
		opts := DownloadOptions{Size: int64(len(content)), SHA256: sum}
		if err := Download(ctx, srv.URL, dst, opts); err == nil || !strings.Contains(err.Error(), "short") {
			t.Fatalf("first call: %v", err)
		}
		err := Download(ctx, srv.URL, dst, opts)
		if err == nil || !strings.Contains(err.Error(), "the server's file has 100000 bytes, want 300000") || exists(dst+".part") {
			t.Errorf("second call: %v (.part kept: %v)", err, exists(dst+".part"))
		}
	})

	t.Run("no network", func(t *testing.T) {
		srv := newTestServer(t, content, "range")
		url := srv.URL
		srv.Close()
		dir := t.TempDir()
		_, err := CatsVsDogs(ctx, CatsVsDogsOptions{DataDir: dir, URL: url})
		if err == nil || !strings.Contains(err.Error(), "no network here?") || !strings.Contains(err.Error(), "-data") ||
			!strings.Contains(err.Error(), filepath.Join(dir)) {
			t.Errorf("offline: %v", err)
		}
	})

	t.Run("checksum from the environment", func(t *testing.T) {
		srv := newTestServer(t, content, "range")
		t.Setenv(SHA256Env, strings.Repeat("0", 64))
		_, err := CatsVsDogs(ctx, CatsVsDogsOptions{DataDir: t.TempDir(), URL: srv.URL})
		if err == nil || !strings.Contains(err.Error(), "want "+strings.Repeat("0", 64)) {
			t.Errorf("%s set: %v", SHA256Env, err)
		}
	})
}
