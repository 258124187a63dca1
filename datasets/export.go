package datasets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/learnresize/learnresize/internal/fileutil"
)

// ExportResult says what ExportSplit wrote.
type ExportResult struct {
	Dir      string
	Written  int
	PerClass []int // examples written per class, indexed like Source.Classes.
	Skipped  SkipReport
}

// ExportSplit copies the original files of a split's examples into dir, under their names relative
// to the source root (cats_vs_dogs: dir/PetImages/Cat/0.jpg; image folders: dir/<class>/<file>), so
// another framework (a PyTorch version of the tutorial, say) can train and validate on exactly the
// images our pipeline uses. Like Prepare it leaves out files the decoder rejects (with a report), so
// the export holds the same examples as the corresponding Split.
//
// dir must not exist: the files are written into a temporary sibling folder that is renamed to dir
// only when every file is written, so a failed or interrupted export leaves nothing behind.
//
// (One piece: one loop over the split's examples between a temporary folder and its commit.)
func ExportSplit(ctx context.Context, src *Source, expr, dir string) (*ExportResult, error) {
	if src == nil {
		return nil, errors.New("export: no source")
	}
	spec, err := ParseSplit(expr)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	ranges, err := spec.Ranges(src.Len())
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if dir == "" {
		return nil, errors.New("export: no output folder given")
	}
	if _, err := os.Lstat(dir); err == nil {
		return nil, fmt.Errorf("export: %s already exists (nothing overwritten)", dir)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("export: %w", err)
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	fail := func(err error) (*ExportResult, error) {
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("export %s to %s: %w", expr, dir, err)
	}
	res := &ExportResult{Dir: dir, PerClass: make([]int, len(src.Classes()))}
	var decodeBuf []uint8
	for _, r := range ranges {
		for pos := r.From; pos < r.To; pos++ {
			if err := ctx.Err(); err != nil {
				return fail(err)
			}
			ex := src.Example(pos)
			data, err := src.ReadFile(pos)
			if err == nil {
				var pix []uint8
				pix, _, _, err = decodeRGB(data, DefaultMaxPixels, decodeBuf)
				if cap(pix) <= 64<<20 {
					decodeBuf = pix
				}
			}
			var skip *SkipError
			if errors.As(err, &skip) {
				res.Skipped.add(ex.Name, skip.Reason, skip.Error())
				continue
			}
			if err != nil {
				return fail(err)
			}
			name := path.Clean(ex.Name)
			if !filepath.IsLocal(filepath.FromSlash(name)) || strings.HasPrefix(name, ".") {
				return fail(fmt.Errorf("example name %q is not a relative path", ex.Name))
			}
			out := filepath.Join(tmp, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return fail(err)
			}
			if err := os.WriteFile(out, data, 0o644); err != nil {
				return fail(err)
			}
			res.Written++
			res.PerClass[ex.Label]++
		}
	}
	if err := fileutil.CommitDir(tmp, dir, false); err != nil {
		return fail(err)
	}
	return res, nil
}
