// Package resources reads how much memory and disk space this machine has, so that sizes that cannot
// fit are refused up front with a one-line error instead of an out-of-memory crash or a full disk
// halfway through; and how much memory this process holds, for the benchmarks' memory figures.
package resources

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// AvailableMemory returns the memory available to new allocations (Linux's MemAvailable: free
// memory plus what the kernel can reclaim) and whether it is known (false off Linux).
func AvailableMemory() (bytes uint64, known bool) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	return parseKB(bufio.NewScanner(f), "MemAvailable:")
}

// parseKB reads the "name: N kB" line of a /proc file (meminfo, status) as bytes.
func parseKB(sc *bufio.Scanner, name string) (uint64, bool) {
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == name {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			if err != nil {
				return 0, false
			}
			return kb * 1024, true
		}
	}
	return 0, false
}

// FreeDisk returns the bytes an unprivileged user can still write in dir's file system and whether
// that is known.
func FreeDisk(dir string) (bytes uint64, known bool) { return freeDisk(dir) }

// Size formats a byte count for messages ("1.35 GB", "7.7 TB"; decimal units, as disks are sold).
func Size(b uint64) string {
	const unit = 1000
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	v, i := float64(b), 0
	for v >= unit && i < 5 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.3g %cB", v, "kMGTPE"[i-1])
}

// PeakRSS returns this process's peak resident memory (Linux's VmHWM: the most of its pages that
// were in RAM at once, everything the process allocated counted, C libraries such as ONNX Runtime
// included) since it started or since the last ResetPeakRSS, and whether it is known (false off
// Linux).
func PeakRSS() (bytes uint64, known bool) { return statusField("VmHWM:") }

// RSS returns this process's resident memory now (Linux's VmRSS) and whether it is known.
func RSS() (bytes uint64, known bool) { return statusField("VmRSS:") }

// ResetPeakRSS starts PeakRSS afresh from the current resident memory (Linux: "5" written to
// /proc/self/clear_refs), so that one phase of a run, a training step, is measured alone.
func ResetPeakRSS() error { return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func statusField(name string) (uint64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	return parseKB(bufio.NewScanner(f), name)
}
