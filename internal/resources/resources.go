// Package resources reads how much memory and disk space this machine has, so that sizes that cannot
// fit are refused up front with a one-line error instead of an out-of-memory crash or a full disk
// halfway through.
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
	return parseMemAvailable(bufio.NewScanner(f))
}

func parseMemAvailable(sc *bufio.Scanner) (uint64, bool) {
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemAvailable:" {
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
