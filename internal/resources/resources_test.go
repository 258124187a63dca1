package resources

import (
	"bufio"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestParseMemAvailable(t *testing.T) {
	in := "MemTotal:       24000000 kB\nMemFree:         1000000 kB\nMemAvailable:   20000000 kB\n"
	if got, ok := parseKB(bufio.NewScanner(strings.NewReader(in)), "MemAvailable:"); !ok || got != 20000000*1024 {
		t.Errorf("parseMemAvailable = %d, %v", got, ok)
	}
	if _, ok := parseKB(bufio.NewScanner(strings.NewReader("MemTotal: 1 kB\n")), "MemAvailable:"); ok {
		t.Error("no MemAvailable line: known")
	}
}

func TestThisMachine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	if m, ok := AvailableMemory(); !ok || m < 1<<20 {
		t.Errorf("AvailableMemory = %d, %v", m, ok)
	}
	if d, ok := FreeDisk(t.TempDir()); !ok || d == 0 {
		t.Errorf("FreeDisk = %d, %v", d, ok)
	}
}

// TestPeakRSS checks that the peak counts memory the process touched and that a reset forgets it:
// 400 MB written and freed raise the peak by about that much, and after a reset the peak is back
// near the resident memory of now.
func TestPeakRSS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	if err := ResetPeakRSS(); err != nil {
		t.Skipf("clear_refs not writable here: %v", err)
	}
	before, ok := PeakRSS()
	if !ok {
		t.Fatal("VmHWM unknown on Linux")
	}
	const n = 400 << 20
	buf := make([]byte, n)
	for i := 0; i < n; i += 4096 {
		buf[i] = 1
	}
	runtime.KeepAlive(buf)
	peak, _ := PeakRSS()
	if peak < before+n*9/10 {
		t.Errorf("peak %d after touching %d bytes, from %d", peak, n, before)
	}
	buf = nil
	runtime.GC()
	debug.FreeOSMemory()
	if err := ResetPeakRSS(); err != nil {
		t.Fatal(err)
	}
	after, _ := PeakRSS()
	rss, _ := RSS()
	if after >= peak-n/2 || after > rss+n/8 {
		t.Errorf("after a reset the peak is %d (resident %d), was %d", after, rss, peak)
	}
}

func TestSize(t *testing.T) {
	for b, want := range map[uint64]string{999: "999 B", 1350000000: "1.35 GB", 7_680_000_000_000: "7.68 TB"} {
		if got := Size(b); got != want {
			t.Errorf("Size(%d) = %q, want %q", b, got, want)
		}
	}
}
