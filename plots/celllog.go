package plots

import (
	"html"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/janpfeifer/gonb/gonbui"
)

// CellLog returns the writer a notebook cell gives for a training log (training.Options.Log, with
// Interactive set, so that the progress bar is redrawn with "\r" as on a terminal) or for the data
// preparation's progress. In GoNB it shows everything written as one block of the cell's output,
// updated in place: the bar is one line that moves, finished lines stay. A cell's standard output
// cannot do that: Jupyter appends every redraw as a new line. Elsewhere it returns os.Stdout.
func CellLog() io.Writer {
	if !gonbui.IsNotebook {
		return os.Stdout
	}
	return &cellLog{id: "learnresize-log-" + gonbui.UniqueId()}
}

type cellLog struct {
	mu   sync.Mutex
	id   string
	text screenText
}

func (c *cellLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.text.Write(p)
	gonbui.UpdateHTML(c.id, `<pre style="white-space: pre-wrap; margin: 0">`+html.EscapeString(c.text.String())+"</pre>")
	if strings.ContainsRune(string(p), '\n') {
		gonbui.Sync() // a finished line must not be lost if the cell ends just after it
	}
	return len(p), nil
}

// screenText is what a progress log shows once redrawn: "\n" ends a line, "\r" starts the
// current line again (the text after it replaces the line; "\r\n" just ends it), and ANSI escape
// sequences (such as "\033[K", erase to the end of the line) are dropped.
type screenText struct {
	lines []string
	cur   []rune
	cr    bool // a "\r" was written: the next text replaces the current line
}

func (s *screenText) Write(p []byte) {
	rs := []rune(string(p))
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '\n':
			s.lines = append(s.lines, string(s.cur))
			s.cur, s.cr = s.cur[:0], false
		case r == '\r':
			s.cr = true
		case r == '\033':
			if i+1 < len(rs) && rs[i+1] == '[' { // CSI: ESC [ parameters, then a final byte in @-~
				for i += 2; i < len(rs) && !(rs[i] >= '@' && rs[i] <= '~'); i++ {
				}
			}
		default:
			if s.cr {
				s.cur, s.cr = s.cur[:0], false
			}
			s.cur = append(s.cur, r)
		}
	}
}

// String is the text shown: the finished lines and the current one.
func (s *screenText) String() string {
	all := append(append([]string(nil), s.lines...), string(s.cur))
	return strings.Join(all, "\n")
}
