package imageservice

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/skiff-sh/skiff/internal/container/image"
)

// DisplayConfig configures a Display.
type DisplayConfig struct {
	// Terminal redraws one block of lines per image in place, with ANSI
	// escapes: a header, then a line per layer with a bar. Without it, the
	// display prints plain lines, one per layer event, for logs and pipes.
	Terminal bool
	// Width is the terminal's width in columns; lines are cut to fit
	// (default 80). Plain lines are never cut.
	Width int
	// Import words the display for an import (layers are copied from the
	// archive) rather than a pull (layers are downloaded).
	Import bool
}

// Display shows the progress of pulls and imports to people. Feed it every
// progress snapshot with Update, then the result with Done. It is not
// safe for concurrent use; ProgressFuncs are called serially, so one can
// call Update directly.
//
// On a terminal:
//
//	Pulling docker.io/library/app:1: 1/2 layers, 1.2MB/3.4MB
//	  0123456789ab  Done            [====================]  1.05MB
//	  23456789abcd  Downloading     [====>               ]  150kB/2.35MB
//
// Elsewhere, a line when a layer starts, at each quarter of a download,
// and when it is done:
//
//	Pulling docker.io/library/app:1: 2 layers, 3.4MB
//	  0123456789ab  Downloading  0B/1.05MB
//	  0123456789ab  Done  1.05MB
type Display struct {
	w   io.Writer
	cfg DisplayConfig

	// ref is the image whose block is being shown; a snapshot for another
	// ref starts a new block below.
	ref string
	// drawn is the number of lines of the block on screen (Terminal).
	drawn int
	// seen is what was printed per layer digest of the block (plain).
	seen map[string]layerMark
	// last is the last snapshot of each ref, for the summaries.
	last map[string]image.Progress
}

// layerMark is what a plain display last said about a layer.
type layerMark struct {
	state   image.LayerState
	quarter int64 // quarters of the download reported
}

// NewDisplay returns a Display that writes to w.
func NewDisplay(w io.Writer, cfg DisplayConfig) *Display {
	if cfg.Width <= 0 {
		cfg.Width = 80
	}
	return &Display{w: w, cfg: cfg, last: map[string]image.Progress{}}
}

// Update shows snapshot p.
func (d *Display) Update(p image.Progress) {
	if p.Ref != d.ref || d.seen == nil {
		d.ref, d.drawn, d.seen = p.Ref, 0, map[string]layerMark{}
		if !d.cfg.Terminal {
			fmt.Fprintf(d.w, "%s %s: %d layers, %s\n", d.verb(), p.Ref, len(p.Layers), FormatSize(p.Total))
		}
	}
	d.last[p.Ref] = p
	if d.cfg.Terminal {
		d.draw(p)
		return
	}
	for _, l := range p.Layers {
		d.plain(l)
	}
}

func (d *Display) verb() string {
	if d.cfg.Import {
		return "Importing"
	}
	return "Pulling"
}

// stateLabel words a layer state for people.
func (d *Display) stateLabel(s image.LayerState) string {
	switch s {
	case image.LayerDownloading:
		if d.cfg.Import {
			return "Copying"
		}
		return "Downloading"
	case image.LayerComplete:
		return "Done"
	case image.LayerExists:
		return "Already exists"
	}
	return string(s)
}

// draw redraws the block of p over the one on screen.
func (d *Display) draw(p image.Progress) {
	var b strings.Builder
	if d.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dF", d.drawn) // to the start of the block's first line
	}
	lines := make([]string, 0, len(p.Layers)+1)
	complete := 0
	for _, l := range p.Layers {
		if l.State == image.LayerComplete || l.State == image.LayerExists {
			complete++
		}
	}
	lines = append(lines, fmt.Sprintf("%s %s: %d/%d layers, %s/%s", d.verb(), p.Ref, complete, len(p.Layers),
		FormatSize(p.Done), FormatSize(p.Total)))
	for _, l := range p.Layers {
		lines = append(lines, fmt.Sprintf("  %-12s  %-14s  %s  %s", shortDigest(l.Digest, 12), d.stateLabel(l.State), bar(l, 20), layerBytes(l)))
	}
	for _, line := range lines {
		b.WriteString("\x1b[2K") // clear what an earlier, longer line left
		b.WriteString(strings.TrimRight(cut(line, d.cfg.Width-1), " "))
		b.WriteByte('\n')
	}
	d.drawn = len(lines)
	io.WriteString(d.w, b.String())
}

// plain prints what changed about layer l since the last snapshot.
func (d *Display) plain(l image.LayerProgress) {
	m, known := d.seen[l.Digest]
	switch {
	case l.State == image.LayerWaiting:
		// Said by the header.
	case !known || m.state != l.State:
		fmt.Fprintf(d.w, "  %s  %s  %s\n", shortDigest(l.Digest, 12), d.stateLabel(l.State), layerBytes(l))
	case l.State == image.LayerDownloading && l.Total > 0:
		if q := l.Done * 4 / l.Total; q > m.quarter && q < 4 {
			fmt.Fprintf(d.w, "  %s  %s  %s\n", shortDigest(l.Digest, 12), d.stateLabel(l.State), layerBytes(l))
		}
	}
	m.state = l.State
	if l.Total > 0 {
		m.quarter = max(m.quarter, l.Done*4/l.Total)
	}
	d.seen[l.Digest] = m
}

// Done ends the display with a line per image, naming it as the final
// snapshot of its operation did when it can:
//
//	Pulled docker.io/library/app:1 (image 9f8e7d6c5b4a3, 2 layers, 3.4MB, 1 already present)
func (d *Display) Done(imgs ...Image) {
	verb := "Pulled"
	if d.cfg.Import {
		verb = "Imported"
	}
	for _, img := range imgs {
		name := displayName(img)
		if d.cfg.Import && len(img.RepoTags) > 1 {
			name = strings.Join(img.RepoTags, ", ") // an archive may name an image many times
		}
		details := []string{"image " + ShortID(img.ID), plural(len(img.Layers), "layer"), FormatSize(img.Size)}
		if name == "" {
			name, details = "image "+ShortID(img.ID), details[1:]
		}
		if p, ok := d.progressOf(img); ok {
			if !d.cfg.Import && name != p.Ref && slices.Contains(slices.Concat(img.RepoTags, img.RepoDigests), p.Ref) {
				name = p.Ref // the name the operation was asked for
			}
			exists := 0
			for _, l := range p.Layers {
				if l.State == image.LayerExists {
					exists++
				}
			}
			if exists > 0 {
				details = append(details, fmt.Sprintf("%d already present", exists))
			}
		}
		fmt.Fprintf(d.w, "%s %s (%s)\n", verb, name, strings.Join(details, ", "))
	}
}

// progressOf finds the last snapshot of the operation that made img.
func (d *Display) progressOf(img Image) (image.Progress, bool) {
	for _, name := range slices.Concat(img.RepoTags, img.RepoDigests, []string{img.ID}) {
		if p, ok := d.last[name]; ok {
			return p, true
		}
	}
	return image.Progress{}, false
}

// displayName is how people know img: its first tag, else its first repo
// digest; "" when it has neither.
func displayName(img Image) string {
	switch {
	case len(img.RepoTags) > 0:
		return img.RepoTags[0]
	case len(img.RepoDigests) > 0:
		return img.RepoDigests[0]
	}
	return ""
}

// bar draws how much of l is done, width characters wide between brackets;
// blank for layers that wait or had nothing to do.
func bar(l image.LayerProgress, width int) string {
	switch {
	case l.State == image.LayerWaiting || l.State == image.LayerExists:
		return strings.Repeat(" ", width+2)
	case l.State == image.LayerComplete || l.Total <= 0:
		return "[" + strings.Repeat("=", width) + "]"
	}
	n := int(min(l.Done, l.Total) * int64(width) / l.Total)
	if n == width {
		return "[" + strings.Repeat("=", width) + "]"
	}
	return "[" + strings.Repeat("=", n) + ">" + strings.Repeat(" ", width-n-1) + "]"
}

// layerBytes is "done/total" while a layer moves, its size otherwise.
func layerBytes(l image.LayerProgress) string {
	if l.State == image.LayerDownloading || l.State == image.LayerExtracting {
		return FormatSize(l.Done) + "/" + FormatSize(l.Total)
	}
	return FormatSize(l.Total)
}

// cut shortens s to n runes.
func cut(s string, n int) string {
	if n <= 0 {
		return ""
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// shortDigest is the first n hex digits of a digest.
func shortDigest(d string, n int) string {
	_, hex, ok := strings.Cut(d, ":")
	if !ok {
		hex = d
	}
	if len(hex) > n {
		hex = hex[:n]
	}
	return hex
}

// ShortID is an image ID as crictl shows it: 13 hex digits, no "sha256:".
func ShortID(id string) string { return shortDigest(id, 13) }

// FormatSize writes n bytes with three significant digits and a decimal
// unit, as crictl and docker show sizes: "700B", "12.3kB", "1.46MB".
func FormatSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB", "EB"}
	v := float64(n)
	i := 0
	for i < len(units)-1 && v >= 999.5 { // 999.5 rounds to 1e+03 with three digits
		v /= 1000
		i++
	}
	return fmt.Sprintf("%.3g%s", v, units[i])
}
