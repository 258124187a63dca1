// Package readme checks that the README's Go snippets compile: each ```go block must appear, line
// for line (indentation aside), in a _test.go file of the repository, which the tests compile. So a
// snippet cannot drift from the API without a test failing.
package readme

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func lines(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func contains(hay, needle []string) bool {
	for i := 0; i+len(needle) <= len(hay); i++ {
		match := true
		for j := range needle {
			if hay[i+j] != needle[j] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

func TestREADMESnippetsCompile(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks [][]string
	parts := strings.Split(string(raw), "```go\n")
	for _, p := range parts[1:] {
		end := strings.Index(p, "```")
		if end < 0 {
			t.Fatal("unterminated ```go block")
		}
		blocks = append(blocks, lines(p[:end]))
	}
	if len(blocks) < 4 {
		t.Fatalf("found %d Go blocks in the README", len(blocks))
	}
	var tests [][]string
	err = filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "runs") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(p, "_test.go") {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			tests = append(tests, lines(string(b)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range blocks {
		found := false
		for _, f := range tests {
			if contains(f, b) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("README Go block %d is in no _test.go file (so nothing checks that it compiles):\n%s", i+1, strings.Join(b, "\n"))
		}
	}
}
