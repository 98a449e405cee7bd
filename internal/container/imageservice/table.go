package imageservice

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// TableOptions picks what WriteTable shows.
type TableOptions struct {
	// Quiet prints only the full image IDs, one per line.
	Quiet bool
	// Digests adds a DIGEST column: the digest of the image's first repo
	// digest.
	Digests bool
	// NoTrunc shows IDs and digests whole.
	NoTrunc bool
}

// WriteTable lists images the way `crictl images` does: a row per tag
// (IMAGE TAG IMAGE ID SIZE), an image with no tag on one row named by its
// first repo digest with the tag <none>, IDs cut to 13 hex digits and
// sizes in decimal units.
func WriteTable(w io.Writer, imgs []Image, opts TableOptions) error {
	if opts.Quiet {
		for _, img := range imgs {
			if _, err := fmt.Fprintln(w, img.ID); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 20, 1, 3, ' ', 0)
	header := []string{"IMAGE", "TAG"}
	if opts.Digests {
		header = append(header, "DIGEST")
	}
	header = append(header, "IMAGE ID", "SIZE")
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, img := range imgs {
		repo, digest := "<none>", "<none>"
		if len(img.RepoDigests) > 0 {
			repo, digest, _ = strings.Cut(img.RepoDigests[0], "@")
		}
		id := img.ID
		if !opts.NoTrunc {
			id = ShortID(id)
			if digest != "<none>" {
				digest = ShortID(digest)
			}
		}
		for _, pair := range repoTagPairs(img.RepoTags, repo) {
			row := []string{pair[0], pair[1]}
			if opts.Digests {
				row = append(row, digest)
			}
			row = append(row, id, FormatSize(img.Size))
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
	}
	return tw.Flush()
}

// repoTagPairs splits each "name:tag" into name and tag; with no tags, the
// image shows once as repo (from its repo digests) with tag <none>.
func repoTagPairs(tags []string, repo string) [][2]string {
	if len(tags) == 0 {
		return [][2]string{{repo, "<none>"}}
	}
	out := make([][2]string, 0, len(tags))
	for _, t := range tags {
		i := strings.LastIndex(t, ":")
		if i < 0 || strings.Contains(t[i:], "/") {
			out = append(out, [2]string{t, "<none>"})
			continue
		}
		out = append(out, [2]string{t[:i], t[i+1:]})
	}
	return out
}
