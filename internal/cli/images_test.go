package cli

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestResolveSocket(t *testing.T) {
	dir := t.TempDir()
	agentSock, criSock := filepath.Join(dir, "agent.sock"), filepath.Join(dir, "cri.sock")
	touch := func(p string) {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		given  bool
		exist  []string
		expect string
	}{
		{name: "AgentsWhenBothExist", exist: []string{agentSock, criSock}, expect: agentSock},
		{name: "AgentsWhenNeitherExists", expect: agentSock},
		{name: "SkiffCRIsWhenOnlyItExists", exist: []string{criSock}, expect: criSock},
		{name: "TheGivenOneAlways", given: true, exist: []string{criSock}, expect: agentSock},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(agentSock)
			os.Remove(criSock)
			for _, p := range tt.exist {
				touch(p)
			}
			if got := resolveSocket(agentSock, tt.given, criSock); got != tt.expect {
				t.Errorf("resolveSocket = %s, want %s", got, tt.expect)
			}
		})
	}
}

// runImages runs `skiff images ARGS...` in process.
func runImages(t *testing.T, stdin io.Reader, args ...string) (string, error) {
	t.Helper()
	cmd := newImagesCommand()
	var out bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(stdin)
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	err := cmd.Execute()
	return out.String(), err
}

func TestImagesCommand_RejectsBadInputBeforeCallingTheRuntime(t *testing.T) {
	dir := t.TempDir()
	noRuntime := filepath.Join(dir, "none.sock")
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "CredsWithoutPassword", args: []string{"pull", "--creds", "me", "busybox"}, wantErr: "--creds wants USER:PASSWORD"},
		{name: "CredsWithoutUser", args: []string{"pull", "--creds", ":pw", "busybox"}, wantErr: "--creds wants USER:PASSWORD"},
		{name: "PullWithoutRef", args: []string{"pull"}, wantErr: "accepts 1 arg(s), received 0"},
		{name: "ImportMissingFile", args: []string{"import", filepath.Join(dir, "nope.tar")}, wantErr: "no such file or directory"},
		{name: "ImportTwoFiles", args: []string{"import", "a", "b"}, wantErr: "accepts 1 arg(s), received 2"},
		{name: "RmWithoutRef", args: []string{"rm"}, wantErr: "requires at least 1 arg(s)"},
		{name: "EmptySocket", args: []string{"ls", "--socket", ""}, wantErr: "--socket must not be empty"},
		{name: "UnknownSubcommand", args: []string{"bogus"}, wantErr: `unknown command "bogus" for "images"`},
		{name: "NoRuntime", args: []string{"gc", "--socket", noRuntime}, wantErr: "no runtime socket at " + noRuntime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if !strings.Contains(strings.Join(args, " "), "--socket") {
				args = append(args, "--socket", noRuntime)
			}
			_, err := runImages(t, strings.NewReader(""), args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one with %q", err, tt.wantErr)
			}
		})
	}
}

func TestOpenArchive_TarsADirectory(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"index.json": `{"manifests":[]}`, "oci-layout": `{"imageLayoutVersion":"1.0.0"}`, "blobs/sha256/abc": "blob"}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := openArchive(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			got[h.Name] = string(b)
		}
	}
	if diff := cmp.Diff(files, got); diff != "" {
		t.Errorf("tarball of the directory (-want +got):\n%s", diff)
	}
}

func TestOpenArchive_StdinAndFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.tar")
	if err := os.WriteFile(p, []byte("archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		arg  string
		in   io.Reader
		want string
	}{
		{name: "Dash", arg: "-", in: strings.NewReader("from stdin"), want: "from stdin"},
		{name: "File", arg: p, want: "archive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := openArchive(tt.arg, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			b, err := io.ReadAll(r)
			if err != nil || string(b) != tt.want {
				t.Errorf("read %q, %v; want %q", b, err, tt.want)
			}
		})
	}
}
