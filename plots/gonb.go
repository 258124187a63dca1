package plots

import (
	"github.com/janpfeifer/gonb/gonbui"
)

// Show displays the figure inline when running in a GoNB notebook (as PNG) and does nothing
// elsewhere. It returns rendering errors.
func Show(f *Figure) error {
	if !gonbui.IsNotebook {
		return nil
	}
	png, err := f.PNG()
	if err != nil {
		return err
	}
	gonbui.DisplayPNG(png)
	gonbui.Sync() // without it, a figure shown just before the cell's program exits can be lost.
	return nil
}

// ShowMarkdown displays Markdown (e.g. the comparison table) inline in GoNB; elsewhere nothing.
func ShowMarkdown(md string) {
	if gonbui.IsNotebook {
		gonbui.DisplayMarkdown(md)
		gonbui.Sync()
	}
}
