package volume

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// dataDirName is the symlink that points at the current timestamped
// directory of an API-data volume (configMap, secret, downwardAPI,
// projected); dataTmpName is the name it is built under before the rename
// that swaps it in.
const (
	dataDirName = "..data"
	dataTmpName = "..data_tmp"
)

// file is one file of an API-data volume: its content, its permission
// bits and, when not nil, the owner it gets.
type file struct {
	Data []byte
	Mode fs.FileMode
	UID  *int64
}

// payload maps a volume-relative path ("a/b.txt") to its file.
type payload map[string]file

// ownership says how the files of a volume are owned: every file's group
// is GID with group read added, and directories get the setgid bit, the
// way the kubelet applies a pod's fsGroup. Nil changes nothing.
type ownership struct {
	GID int64
}

// writeAtomic makes dir hold exactly p, so that a reader never sees a mix
// of the old and the new content: the files go into a new hidden
// directory "..<timestamp>", the "..data" symlink is swapped to it with a
// rename, and each top-level name in dir is a symlink through "..data".
// It does nothing (and returns false) when dir already holds p. dir must
// exist; it is owned by the volume manager and nothing else writes in it.
func writeAtomic(dir string, p payload, own *ownership, now time.Time) (bool, error) {
	if err := validatePayload(p); err != nil {
		return false, err
	}
	oldTS, err := os.Readlink(filepath.Join(dir, dataDirName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read %s: %w", dataDirName, err)
	}
	if oldTS != "" {
		same, err := sameContent(filepath.Join(dir, oldTS), p, own)
		if err != nil {
			return false, err
		}
		if same {
			return false, nil
		}
	}
	tsDir, err := os.MkdirTemp(dir, now.UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return false, fmt.Errorf("make data dir: %w", err)
	}
	if err := writePayload(tsDir, p, own); err != nil {
		os.RemoveAll(tsDir)
		return false, err
	}
	tmp := filepath.Join(dir, dataTmpName)
	os.Remove(tmp)
	if err := os.Symlink(filepath.Base(tsDir), tmp); err != nil {
		os.RemoveAll(tsDir)
		return false, fmt.Errorf("link new data dir: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, dataDirName)); err != nil {
		os.Remove(tmp)
		os.RemoveAll(tsDir)
		return false, fmt.Errorf("swap data dir: %w", err)
	}
	if err := linkTopLevel(dir, p); err != nil {
		return true, err
	}
	if oldTS != "" && oldTS != filepath.Base(tsDir) && isDataDir(oldTS) {
		if err := os.RemoveAll(filepath.Join(dir, oldTS)); err != nil {
			return true, fmt.Errorf("remove old data dir: %w", err)
		}
	}
	return true, nil
}

// isDataDir reports whether name is one of writeAtomic's timestamped
// directories.
func isDataDir(name string) bool {
	return strings.HasPrefix(name, "..") && name != dataDirName && name != dataTmpName && !strings.Contains(name, "/")
}

// validatePayload rejects paths that could leave the volume or collide
// with its bookkeeping names.
func validatePayload(p payload) error {
	for name := range p {
		if err := validateRelPath(name); err != nil {
			return err
		}
		if strings.HasPrefix(name, "..") {
			return fmt.Errorf("path %q: may not start with '..'", name)
		}
	}
	names := make([]string, 0, len(p))
	for name := range p {
		names = append(names, name)
	}
	sort.Strings(names)
	for i := 1; i < len(names); i++ {
		if strings.HasPrefix(names[i], names[i-1]+"/") {
			return fmt.Errorf("path %q is both a file and the directory of %q", names[i-1], names[i])
		}
	}
	return nil
}

// validateRelPath accepts a clean relative path without ".." elements.
func validateRelPath(name string) error {
	switch {
	case name == "":
		return errors.New("empty path")
	case filepath.IsAbs(name):
		return fmt.Errorf("path %q must be relative", name)
	case len(name) > 4096:
		return fmt.Errorf("path %q is too long", name[:64]+"...")
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return fmt.Errorf("path %q must not contain '..'", name)
		}
		if el == "" || el == "." {
			return fmt.Errorf("path %q is not clean", name)
		}
	}
	return nil
}

func writePayload(root string, p payload, own *ownership) error {
	for name, f := range p {
		full := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		if err := os.WriteFile(full, f.Data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		mode := f.Mode.Perm()
		uid, gid := -1, -1
		if f.UID != nil {
			uid = int(*f.UID)
		}
		if own != nil {
			gid = int(own.GID)
			mode |= groupRead
		}
		if uid >= 0 || gid >= 0 {
			if err := os.Lchown(full, uid, gid); err != nil {
				return fmt.Errorf("chown %s: %w", name, err)
			}
		}
		if err := os.Chmod(full, mode); err != nil {
			return fmt.Errorf("chmod %s: %w", name, err)
		}
	}
	if own == nil {
		return nil
	}
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if err := os.Lchown(path, -1, int(own.GID)); err != nil {
			return fmt.Errorf("chown %s: %w", path, err)
		}
		return os.Chmod(path, 0o755|fs.ModeSetgid)
	})
}

// groupRead is the bit an fsGroup adds to every file of an API-data
// volume: group read, as the kubelet does for read-only volumes.
const groupRead fs.FileMode = 0o040

// sameContent reports whether tsDir holds exactly p (data, permission
// bits and owners).
func sameContent(tsDir string, p payload, own *ownership) (bool, error) {
	seen := 0
	err := filepath.WalkDir(tsDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(tsDir, path)
		f, ok := p[rel]
		if !ok {
			return errDiffers
		}
		seen++
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := f.Mode.Perm()
		if own != nil {
			want |= groupRead
		}
		if info.Mode().Perm() != want || !ownedAs(info, f.UID, own) {
			return errDiffers
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !bytes.Equal(data, f.Data) {
			return errDiffers
		}
		return nil
	})
	switch {
	case errors.Is(err, errDiffers), errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("compare data dir: %w", err)
	}
	return seen == len(p), nil
}

var errDiffers = errors.New("content differs")

// linkTopLevel makes every top-level name of p a symlink through ..data
// and removes the names that p no longer has.
func linkTopLevel(dir string, p payload) error {
	want := map[string]bool{}
	for name := range p {
		want[strings.SplitN(name, "/", 2)[0]] = true
	}
	for name := range want {
		link := filepath.Join(dir, name)
		target := filepath.Join(dataDirName, name)
		if cur, err := os.Readlink(link); err == nil && cur == target {
			continue
		}
		tmp := filepath.Join(dir, "..link_"+name)
		os.Remove(tmp)
		if err := os.Symlink(target, tmp); err != nil {
			return fmt.Errorf("link %s: %w", name, err)
		}
		if err := os.Rename(tmp, link); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("link %s: %w", name, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list volume: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if want[name] || strings.HasPrefix(name, "..") {
			continue
		}
		// Only the symlinks this writer made are removed; anything else
		// in the directory is left alone.
		if e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		if target, err := os.Readlink(filepath.Join(dir, name)); err == nil && strings.HasPrefix(target, dataDirName+"/") {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("unlink %s: %w", name, err)
			}
		}
	}
	return nil
}
