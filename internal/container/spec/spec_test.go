package spec

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/sys/caps"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func TestArgv_CombinesLikeKubernetes(t *testing.T) {
	img := imagespec.ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"cmd-arg"}}
	tests := []struct {
		name          string
		img           imagespec.ImageConfig
		command, args []string
		want          []string
	}{
		{name: "ImageDefaults", img: img, want: []string{"/entry", "cmd-arg"}},
		{name: "ArgsReplaceCmd", img: img, args: []string{"a"}, want: []string{"/entry", "a"}},
		{name: "CommandReplacesEntrypointAndDropsCmd", img: img, command: []string{"/bin/x"}, want: []string{"/bin/x"}},
		{name: "CommandAndArgs", img: img, command: []string{"/bin/x"}, args: []string{"y"}, want: []string{"/bin/x", "y"}},
		{name: "CmdOnlyImage", img: imagespec.ImageConfig{Cmd: []string{"/bin/sh", "-c", "x"}}, want: []string{"/bin/sh", "-c", "x"}},
		{name: "ArgsOnNoEntrypointImage", img: imagespec.ImageConfig{Cmd: []string{"/bin/sh"}}, args: []string{"/bin/echo", "hi"}, want: []string{"/bin/echo", "hi"}},
		{name: "Nothing", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Argv(tt.img, tt.command, tt.args)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Argv (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEnv_RequestOverridesImage(t *testing.T) {
	img := imagespec.ImageConfig{Env: []string{"A=1", "PATH=/bin", "B=2"}}
	got := Env(img, []*runtimeapi.KeyValue{{Key: "B", Value: []byte("3")}, {Key: "C", Value: []byte("4")}}, "pod", true)
	want := []string{"A=1", "PATH=/bin", "B=3", "HOSTNAME=pod", "TERM=xterm", "C=4"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Env (-want +got):\n%s", diff)
	}
	if got := Env(imagespec.ImageConfig{}, nil, "", false); !cmp.Equal(got, []string{"PATH=" + DefaultPath}) {
		t.Errorf("Env of empty image = %v, want only the default PATH", got)
	}
}

var users = UserDB{
	Passwd: []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n# comment\nbroken:line\n"),
	Group:  []byte("root:x:0:\napp:x:1000:\nwheel:x:10:app,other\naudio:x:29:app\nstaff:x:50:other\n"),
}

func TestUserDB_Resolve(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want User
		err  error
	}{
		{name: "EmptyIsRoot", spec: "", want: User{Home: "/root", Username: "root"}},
		{name: "ByName", spec: "app", want: User{UID: 1000, GID: 1000, Additional: []uint32{10, 29}, Home: "/home/app", Username: "app"}},
		{name: "ByUID", spec: "1000", want: User{UID: 1000, GID: 1000, Additional: []uint32{10, 29}, Home: "/home/app", Username: "app"}},
		{name: "NameWithGroupName", spec: "app:staff", want: User{UID: 1000, GID: 50, Additional: []uint32{10, 29}, Home: "/home/app", Username: "app"}},
		{name: "NumericNotInPasswd", spec: "4242", want: User{UID: 4242, Home: "/"}},
		{name: "NumericPair", spec: "4242:77", want: User{UID: 4242, GID: 77, Home: "/"}},
		{name: "UnknownName", spec: "ghost", err: ErrUnknownUser},
		{name: "UnknownGroup", spec: "app:ghosts", err: ErrUnknownUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := users.Resolve(tt.spec)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Resolve(%q) error = %v, want %v", tt.spec, err, tt.err)
			}
			if diff := cmp.Diff(tt.want, got); err == nil && diff != "" {
				t.Errorf("Resolve(%q) (-want +got):\n%s", tt.spec, diff)
			}
		})
	}
}

func TestCapabilities(t *testing.T) {
	tests := []struct {
		name       string
		add, drop  []string
		privileged bool
		want       caps.Set
		err        error
	}{
		{name: "Default", want: caps.Default},
		{name: "AddOne", add: []string{"NET_ADMIN"}, want: caps.Default | caps.Of(12)},
		{name: "DropOne", drop: []string{"CAP_CHOWN"}, want: caps.Default &^ caps.Of(0)},
		{name: "DropAllAddOne", add: []string{"NET_BIND_SERVICE"}, drop: []string{"ALL"}, want: caps.Of(10)},
		{name: "DropWinsOverAdd", add: []string{"NET_ADMIN"}, drop: []string{"NET_ADMIN"}, want: caps.Default},
		{name: "AddAll", add: []string{"ALL"}, want: caps.All()},
		{name: "Privileged", privileged: true, drop: []string{"ALL"}, want: caps.All()},
		{name: "Unknown", add: []string{"CAP_TELEPORT"}, err: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Capabilities(&runtimeapi.Capability{AddCapabilities: tt.add, DropCapabilities: tt.drop}, tt.privileged)
			if !errors.Is(err, tt.err) {
				t.Fatalf("error = %v, want %v", err, tt.err)
			}
			if err == nil && got != tt.want {
				t.Errorf("Capabilities = %v, want %v", got.Names(), tt.want.Names())
			}
		})
	}
}

func baseInput() Input {
	return Input{
		Sandbox: Sandbox{
			Config: &runtimeapi.PodSandboxConfig{
				Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "uid-1"},
				Hostname: "web",
			},
			Namespaces: map[specs.LinuxNamespaceType]string{
				specs.NetworkNamespace: "/state/sandboxes/s1/ns/net",
				specs.IPCNamespace:     "/state/sandboxes/s1/ns/ipc",
				specs.UTSNamespace:     "/state/sandboxes/s1/ns/uts",
			},
			Hostname: "/state/sandboxes/s1/hostname", Hosts: "/state/sandboxes/s1/hosts",
			ResolvConf: "/state/sandboxes/s1/resolv.conf", Shm: "/state/sandboxes/s1/shm",
		},
		Container: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
			Image:    &runtimeapi.ImageSpec{Image: "toolbox"},
			Args:     []string{"sleep", "10"},
			Envs:     []*runtimeapi.KeyValue{{Key: "MODE", Value: []byte("test")}},
		},
		Image:       imagespec.ImageConfig{Entrypoint: []string{"/bin/toolbox"}, Env: []string{"PATH=/bin"}, User: "app", WorkingDir: "/srv"},
		Users:       users,
		Rootfs:      "/state/containers/c1/rootfs",
		CgroupsPath: "/skiff/pod-s1/c1",
		Controllers: []string{"memory", "cpu", "pids"},
	}
}

func TestBuild_Golden(t *testing.T) {
	tests := []struct {
		name   string
		modify func(in *Input)
	}{
		{name: "default", modify: func(*Input) {}},
		{name: "volumes-readonly-rootfs", modify: func(in *Input) {
			in.Cgroup2 = true
			in.Container.Mounts = []*runtimeapi.Mount{
				{ContainerPath: "/data", HostPath: "/srv/data", Readonly: true},
				{ContainerPath: "/shared/", HostPath: "/srv/shared", Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
				{ContainerPath: "/etc/hosts", HostPath: "/srv/hosts"},
			}
			in.Container.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				ReadonlyRootfs: true, RunAsUser: &runtimeapi.Int64Value{Value: 4242}, RunAsGroup: &runtimeapi.Int64Value{Value: 42},
				SupplementalGroups: []int64{7}, NoNewPrivs: true,
				Capabilities: &runtimeapi.Capability{DropCapabilities: []string{"ALL"}, AddCapabilities: []string{"NET_BIND_SERVICE"}},
			}}
		}},
		{name: "privileged-host-network", modify: func(in *Input) {
			in.Sandbox.Namespaces = nil
			in.Sandbox.Hostname = ""
			in.Container.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				Privileged: true, NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_NODE},
			}}
		}},
		{name: "runtime-default-seccomp", modify: func(in *Input) {
			in.Container.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
			}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseInput()
			tt.modify(&in)
			s, err := Build(in)
			if err != nil {
				t.Fatal(err)
			}
			if s.Hostname != "web" {
				s.Hostname = "<host>" // the host's name varies
				for i, e := range s.Process.Env {
					if len(e) > 9 && e[:9] == "HOSTNAME=" {
						s.Process.Env[i] = "HOSTNAME=<host>"
					}
				}
			}
			got, err := json.MarshalIndent(s, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.name+".json")
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)+"\n"); diff != "" {
				t.Errorf("spec differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

func TestBuild_RejectsBadInput(t *testing.T) {
	tests := []struct {
		name   string
		modify func(in *Input)
	}{
		{"NoName", func(in *Input) { in.Container.Metadata = nil }},
		{"NoCommand", func(in *Input) { in.Image = imagespec.ImageConfig{}; in.Container.Args = nil }},
		{"UnknownUser", func(in *Input) { in.Image.User = "ghost" }},
		{"RelativeWorkdir", func(in *Input) { in.Container.WorkingDir = "srv" }},
		{"RelativeMountDestination", func(in *Input) {
			in.Container.Mounts = []*runtimeapi.Mount{{ContainerPath: "data", HostPath: "/srv"}}
		}},
		{"RelativeMountSource", func(in *Input) {
			in.Container.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "srv"}}
		}},
		{"UnknownCapability", func(in *Input) {
			in.Container.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"CAP_NOPE"}}}}
		}},
		{"MissingLocalhostProfile", func(in *Input) {
			in.Container.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/nonexistent/profile.json"}}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseInput()
			tt.modify(&in)
			if _, err := Build(in); !errors.Is(err, ErrInvalid) {
				t.Errorf("Build error = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestBuild_LocalhostProfile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.json"), []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	in := baseInput()
	in.SeccompProfileRoot = dir
	in.Container.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
		Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "p.json"}}}
	s, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActAllow || len(s.Linux.Seccomp.Syscalls) != 1 {
		t.Errorf("seccomp = %+v, want the file's profile", s.Linux.Seccomp)
	}
}
