//go:build !unix

package resources

func freeDisk(string) (uint64, bool) { return 0, false }
