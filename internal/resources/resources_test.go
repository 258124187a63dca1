package resources

import (
	"bufio"
	"runtime"
	"strings"
	"testing"
)

func TestParseMemAvailable(t *testing.T) {
	in := "MemTotal:       24000000 kB\nMemFree:         1000000 kB\nMemAvailable:   20000000 kB\n"
	if got, ok := parseMemAvailable(bufio.NewScanner(strings.NewReader(in))); !ok || got != 20000000*1024 {
		t.Errorf("parseMemAvailable = %d, %v", got, ok)
	}
	if _, ok := parseMemAvailable(bufio.NewScanner(strings.NewReader("MemTotal: 1 kB\n"))); ok {
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

func TestSize(t *testing.T) {
	for b, want := range map[uint64]string{999: "999 B", 1350000000: "1.35 GB", 7_680_000_000_000: "7.68 TB"} {
		if got := Size(b); got != want {
			t.Errorf("Size(%d) = %q, want %q", b, got, want)
		}
	}
}
