// Command toolbox is the one program inside skiff's test images. Test images
// have no shell and no busybox, so toolbox is a multi-call binary: it picks
// the command from the base name of argv[0] (/bin/sleep is a symlink to
// /bin/toolbox) or, when called as "toolbox", from its first argument.
//
// It uses only the standard library so that it builds with CGO_ENABLED=0 into
// a static binary. Run "toolbox help" for the list of commands.
package main

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// command is one toolbox command. It returns the process exit code.
type command struct {
	usage string
	run   func(args []string) int
}

// commands returns the command table. It is built on demand (no
// package-level state) and is small enough that this costs nothing.
func commands() map[string]command {
	return map[string]command{
		"true":        {"true", func([]string) int { return 0 }},
		"false":       {"false", func([]string) int { return 1 }},
		"sleep":       {"sleep SECONDS|infinity", sleep},
		"echo":        {"echo ARGS...", echo},
		"cat":         {"cat FILE...", cat},
		"ls":          {"ls [DIR]", ls},
		"env":         {"env", env},
		"hostname":    {"hostname", hostname},
		"id":          {"id", id},
		"pwd":         {"pwd", pwd},
		"exit":        {"exit CODE", exitCode},
		"fetch":       {"fetch URL", fetch},
		"touch":       {"touch FILE...", touch},
		"rm":          {"rm PATH...", rm},
		"write":       {"write FILE CONTENT", write},
		"mkdir":       {"mkdir DIR...", mkdir},
		"stat":        {"stat PATH...", stat},
		"hog":         {"hog MB", hog},
		"forkbomb":    {"forkbomb", forkbomb},
		"spin":        {"spin [SECONDS]", spin},
		"serve-http":  {"serve-http PORT [TEXT]", serveHTTP},
		"serve-tcp":   {"serve-tcp PORT", serveTCP},
		"print-lines": {"print-lines N [stderr]", printLines},
		"tick":        {"tick MILLISECONDS", tick},
		"read-stdin":  {"read-stdin", readStdin},
		"mounts":      {"mounts", mounts},
		"ps":          {"ps", ps},
		"signals":     {"signals [DELAY_SECONDS]", signals},
		"mknod":       {"mknod PATH", mknod},
		"ifaces":      {"ifaces", ifaces},
		"sh":          {"sh -c 'COMMAND ARGS...'", sh},
		"tar":         {"tar cf - [-C DIR] PATH... | tar xf - [-C DIR]", tarCmd},
	}
}

// names lists every command name, sorted.
func names() []string {
	var out []string
	for n := range commands() {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func main() {
	os.Exit(dispatch(os.Args))
}

func dispatch(argv []string) int {
	if len(argv) == 0 {
		return usage()
	}
	name := filepath.Base(argv[0])
	args := argv[1:]
	if name == "toolbox" {
		if len(args) == 0 {
			return usage()
		}
		name, args = args[0], args[1:]
	}
	if name == "help" || name == "--help" {
		usage()
		return 0
	}
	if name == "--list" {
		for _, n := range names() {
			fmt.Println(n)
		}
		return 0
	}
	c, ok := commands()[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "toolbox: unknown command %q\n", name)
		return 127
	}
	return c.run(args)
}

func usage() int {
	fmt.Fprintln(os.Stderr, "usage: toolbox COMMAND [ARGS...]; commands:")
	for _, n := range names() {
		fmt.Fprintf(os.Stderr, "  %s\n", commands()[n].usage)
	}
	return 2
}

func fail(format string, a ...any) int {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	return 1
}

func sleep(args []string) int {
	if len(args) != 1 {
		return fail("usage: sleep SECONDS|infinity")
	}
	if args[0] == "infinity" || args[0] == "inf" {
		// Not select{}: with no other goroutine the runtime would report
		// a deadlock and exit.
		for {
			time.Sleep(time.Hour)
		}
	}
	d, err := time.ParseDuration(args[0])
	if err != nil {
		secs, ferr := strconv.ParseFloat(args[0], 64)
		if ferr != nil || secs < 0 {
			return fail("sleep: invalid time %q", args[0])
		}
		d = time.Duration(secs * float64(time.Second))
	}
	time.Sleep(d)
	return 0
}

func echo(args []string) int {
	fmt.Println(strings.Join(args, " "))
	return 0
}

func cat(args []string) int {
	if len(args) == 0 {
		return readStdin(nil)
	}
	code := 0
	for _, p := range args {
		f, err := os.Open(p)
		if err != nil {
			fmt.Fprintf(os.Stderr, "cat: %v\n", err)
			code = 1
			continue
		}
		_, err = io.Copy(os.Stdout, f)
		f.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "cat: %s: %v\n", p, err)
			code = 1
		}
	}
	return code
}

func ls(args []string) int {
	dir := "."
	if len(args) > 0 {
		dir = args[0]
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fail("ls: %v", err)
	}
	for _, e := range entries {
		fmt.Println(e.Name())
	}
	return 0
}

func env([]string) int {
	for _, kv := range os.Environ() {
		fmt.Println(kv)
	}
	return 0
}

func hostname([]string) int {
	h, err := os.Hostname()
	if err != nil {
		return fail("hostname: %v", err)
	}
	fmt.Println(h)
	return 0
}

func id([]string) int {
	uid, gid := os.Getuid(), os.Getgid()
	uname, gname := "", ""
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		uname = "(" + u.Username + ")"
	}
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		gname = "(" + g.Name + ")"
	}
	groups, _ := os.Getgroups()
	gs := make([]string, 0, len(groups))
	for _, g := range groups {
		gs = append(gs, strconv.Itoa(g))
	}
	fmt.Printf("uid=%d%s gid=%d%s groups=%s\n", uid, uname, gid, gname, strings.Join(gs, ","))
	return 0
}

func pwd([]string) int {
	d, err := os.Getwd()
	if err != nil {
		return fail("pwd: %v", err)
	}
	fmt.Println(d)
	return 0
}

func exitCode(args []string) int {
	if len(args) == 0 {
		return 0
	}
	n, err := strconv.Atoi(args[0])
	if err != nil {
		return fail("exit: invalid code %q", args[0])
	}
	return n
}

func touch(args []string) int {
	for _, p := range args {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return fail("touch: %v", err)
		}
		f.Close()
		now := time.Now()
		if err := os.Chtimes(p, now, now); err != nil {
			return fail("touch: %v", err)
		}
	}
	return 0
}

func write(args []string) int {
	if len(args) < 1 {
		return fail("usage: write FILE CONTENT")
	}
	if err := os.WriteFile(args[0], []byte(strings.Join(args[1:], " ")), 0o644); err != nil {
		return fail("write: %v", err)
	}
	return 0
}

// rm removes each PATH and everything under it; a missing PATH is not an
// error (as rm -rf).
func rm(args []string) int {
	for _, p := range args {
		if err := os.RemoveAll(p); err != nil {
			return fail("rm: %v", err)
		}
	}
	return 0
}

func mkdir(args []string) int {
	for _, p := range args {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fail("mkdir: %v", err)
		}
	}
	return 0
}

// stat prints "PATH TYPE MODE UID GID SIZE [-> TARGET]", one line per path,
// without following a final symlink. MODE is octal with setuid/setgid/sticky.
func stat(args []string) int {
	code := 0
	for _, p := range args {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			fmt.Fprintf(os.Stderr, "stat: %s: %v\n", p, err)
			code = 1
			continue
		}
		kind := "other"
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			kind = "file"
		case syscall.S_IFDIR:
			kind = "dir"
		case syscall.S_IFLNK:
			kind = "symlink"
		case syscall.S_IFCHR:
			kind = "chardev"
		case syscall.S_IFBLK:
			kind = "blockdev"
		case syscall.S_IFIFO:
			kind = "fifo"
		case syscall.S_IFSOCK:
			kind = "socket"
		}
		line := fmt.Sprintf("%s %s %04o %d %d %d", p, kind, st.Mode&0o7777, st.Uid, st.Gid, st.Size)
		if kind == "symlink" {
			if target, err := os.Readlink(p); err == nil {
				line += " -> " + target
			}
		}
		fmt.Println(line)
	}
	return code
}

// hog allocates MB megabytes one at a time, writing to every page so the
// memory is really charged, reports progress and then waits to be killed.
func hog(args []string) int {
	if len(args) != 1 {
		return fail("usage: hog MB")
	}
	mb, err := strconv.Atoi(args[0])
	if err != nil || mb < 0 {
		return fail("hog: invalid size %q", args[0])
	}
	held := make([][]byte, 0, mb)
	for i := 0; i < mb; i++ {
		b := make([]byte, 1<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = byte(i + 1)
		}
		held = append(held, b)
		if (i+1)%16 == 0 || i+1 == mb {
			fmt.Printf("allocated %d MB\n", i+1)
		}
	}
	fmt.Println("hog: done")
	for {
		time.Sleep(time.Hour)
		runtime.KeepAlive(held)
	}
}

// forkbomb starts copies of itself without end; each copy does the same.
// When fork fails (pids limit) it backs off and tries again, so only killing
// the whole group (or cgroup) stops it.
func forkbomb([]string) int {
	self, err := os.Executable()
	if err != nil {
		self = "/proc/self/exe"
	}
	for {
		cmd := exec.Command(self, "forkbomb")
		cmd.Args[0] = "forkbomb"
		if err := cmd.Start(); err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go cmd.Wait() //nolint:errcheck // reaping only
	}
}

func spin(args []string) int {
	var deadline time.Time
	if len(args) > 0 {
		secs, err := strconv.ParseFloat(args[0], 64)
		if err != nil {
			return fail("spin: invalid seconds %q", args[0])
		}
		deadline = time.Now().Add(time.Duration(secs * float64(time.Second)))
	}
	x := uint64(1)
	for i := 0; ; i++ {
		x = x*6364136223846793005 + 1442695040888963407
		if i%1_000_000 == 0 && !deadline.IsZero() && time.Now().After(deadline) {
			fmt.Println(x % 10)
			return 0
		}
	}
}

// serveHTTP answers /healthz with "ok", /echo with the request (method,
// path, headers and body), /exit/CODE by exiting, and anything else with
// TEXT (default: the hostname).
func serveHTTP(args []string) int {
	if len(args) < 1 {
		return fail("usage: serve-http PORT [TEXT]")
	}
	text := strings.Join(args[1:], " ")
	if text == "" {
		text, _ = os.Hostname()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s\n", r.Method, r.URL.RequestURI())
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s: %s\n", k, strings.Join(r.Header[k], ","))
		}
		fmt.Fprintln(w)
		io.Copy(w, r.Body) //nolint:errcheck // best effort echo
	})
	mux.HandleFunc("/exit/", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/exit/"))
		fmt.Fprintln(w, "bye")
		go func() { time.Sleep(50 * time.Millisecond); os.Exit(n) }()
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, text)
	})
	ln, err := net.Listen("tcp", ":"+args[0])
	if err != nil {
		return fail("serve-http: %v", err)
	}
	fmt.Printf("serve-http: listening on %s\n", ln.Addr())
	if err := http.Serve(ln, mux); err != nil {
		return fail("serve-http: %v", err)
	}
	return 0
}

// fetch GETs URL (within 5 s) and prints the body; it exits 1 when the
// request fails or the status is not 2xx.
func fetch(args []string) int {
	if len(args) != 1 {
		return fail("usage: fetch URL")
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(args[0])
	if err != nil {
		return fail("fetch: %v", err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(os.Stdout, resp.Body); err != nil {
		return fail("fetch: %s: %v", args[0], err)
	}
	if resp.StatusCode/100 != 2 {
		return fail("fetch: %s: %s", args[0], resp.Status)
	}
	return 0
}

// serveTCP echoes every connection's bytes back to it.
func serveTCP(args []string) int {
	if len(args) != 1 {
		return fail("usage: serve-tcp PORT")
	}
	ln, err := net.Listen("tcp", ":"+args[0])
	if err != nil {
		return fail("serve-tcp: %v", err)
	}
	fmt.Printf("serve-tcp: listening on %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return fail("serve-tcp: %v", err)
		}
		go func() {
			defer c.Close()
			io.Copy(c, c) //nolint:errcheck // echo until the peer closes
		}()
	}
}

// tick prints "tick N" every interval until it is killed: output that
// keeps coming at a steady, small rate.
func tick(args []string) int {
	if len(args) != 1 {
		return fail("usage: tick MILLISECONDS")
	}
	ms, err := strconv.Atoi(args[0])
	if err != nil || ms <= 0 {
		return fail("tick: invalid interval %q", args[0])
	}
	t := time.NewTicker(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	for i := 1; ; i++ {
		if _, err := fmt.Printf("tick %d\n", i); err != nil {
			return 1
		}
		<-t.C
	}
}

func printLines(args []string) int {
	if len(args) < 1 {
		return fail("usage: print-lines N [stderr]")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 0 {
		return fail("print-lines: invalid count %q", args[0])
	}
	out := bufio.NewWriter(os.Stdout)
	if len(args) > 1 && args[1] == "stderr" {
		out = bufio.NewWriter(os.Stderr)
	}
	for i := 1; i <= n; i++ {
		fmt.Fprintf(out, "line %d\n", i)
	}
	if err := out.Flush(); err != nil {
		return 1
	}
	return 0
}

func readStdin([]string) int {
	if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
		return fail("read-stdin: %v", err)
	}
	return 0
}

func mounts([]string) int {
	return cat([]string{"/proc/self/mountinfo"})
}

// ps prints "PID COMM" for every process visible in /proc.
func ps([]string) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return fail("ps: %v", err)
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	fmt.Println("PID COMMAND")
	for _, pid := range pids {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil {
			continue
		}
		fmt.Printf("%d %s\n", pid, strings.TrimSpace(string(comm)))
	}
	return 0
}

// signals prints "ready", then reports each SIGTERM, SIGINT or SIGHUP it
// gets; after SIGTERM or SIGINT it waits DELAY_SECONDS (default 1) and exits 0.
func signals(args []string) int {
	delay := time.Second
	if len(args) > 0 {
		secs, err := strconv.ParseFloat(args[0], 64)
		if err != nil || secs < 0 {
			return fail("signals: invalid delay %q", args[0])
		}
		delay = time.Duration(secs * float64(time.Second))
	}
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	fmt.Println("ready")
	for s := range ch {
		fmt.Printf("got %s\n", sigName(s))
		if s == syscall.SIGHUP {
			continue
		}
		time.Sleep(delay)
		fmt.Println("exiting")
		return 0
	}
	return 0
}

func sigName(s os.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return s.String()
}

// mknod tries to create a character device (1:3, like /dev/null) at PATH
// and reports the outcome; it exits 1 when the kernel refuses.
func mknod(args []string) int {
	if len(args) != 1 {
		return fail("usage: mknod PATH")
	}
	dev := 1<<8 | 3
	if err := syscall.Mknod(args[0], syscall.S_IFCHR|0o600, dev); err != nil {
		fmt.Printf("mknod %s: %v\n", args[0], err)
		return 1
	}
	fmt.Printf("mknod %s: ok\n", args[0])
	return 0
}

// ifaces prints "NAME FLAGS ADDR..." for each network interface.
func ifaces([]string) int {
	list, err := net.Interfaces()
	if err != nil {
		return fail("ifaces: %v", err)
	}
	for _, ifc := range list {
		addrs, _ := ifc.Addrs()
		as := make([]string, 0, len(addrs))
		for _, a := range addrs {
			as = append(as, a.String())
		}
		fmt.Printf("%s %s %s\n", ifc.Name, ifc.Flags, strings.Join(as, " "))
	}
	return 0
}

// sh understands only "sh -c 'CMD ARGS...'" with one toolbox command, an
// optional leading "exec", and single or double quotes; it has no pipes,
// redirections or variables. It exists so that probes and commands written
// for a real shell work when they are this simple.
func sh(args []string) int {
	if len(args) < 2 || args[0] != "-c" {
		return fail("sh: only 'sh -c COMMAND' is supported")
	}
	words, err := splitWords(args[1])
	if err != nil {
		return fail("sh: %v", err)
	}
	if len(words) > 0 && words[0] == "exec" {
		words = words[1:]
	}
	if len(words) == 0 {
		return 0
	}
	return dispatch(words)
}

func splitWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		quote rune
		in    bool
	)
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
				continue
			}
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// tarCmd is the part of tar that kubectl cp uses: "tar cf - PATH..." writes
// an archive of PATHs (leading "/" dropped, as GNU tar does) to stdout, and
// "tar xmf - -C DIR" extracts one from stdin. Flags may carry a leading
// "-"; v and m are accepted and ignored.
func tarCmd(args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "tar: usage: tar cf - [-C DIR] PATH... | tar xf - [-C DIR]")
		return 2
	}
	flags := strings.TrimPrefix(args[0], "-")
	create, extract := strings.Contains(flags, "c"), strings.Contains(flags, "x")
	if create == extract || !strings.Contains(flags, "f") || args[1] != "-" {
		fmt.Fprintf(os.Stderr, "tar: unsupported flags %q %q (want cf - or xf -)\n", args[0], args[1])
		return 2
	}
	dir := "."
	var paths []string
	for rest := args[2:]; len(rest) > 0; rest = rest[1:] {
		if rest[0] == "-C" && len(rest) > 1 {
			dir, rest = rest[1], rest[1:]
			continue
		}
		paths = append(paths, rest[0])
	}
	var err error
	if create {
		err = tarCreate(os.Stdout, dir, paths)
	} else {
		err = tarExtract(os.Stdin, dir)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "tar: %v\n", err)
		return 1
	}
	return 0
}

func tarCreate(w io.Writer, dir string, paths []string) error {
	tw := tar.NewWriter(w)
	for _, root := range paths {
		full := root
		if !filepath.IsAbs(root) {
			full = filepath.Join(dir, root)
		}
		err := filepath.Walk(full, func(p string, info os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			link := ""
			if info.Mode()&os.ModeSymlink != 0 {
				if link, err = os.Readlink(p); err != nil {
					return err
				}
			}
			h, err := tar.FileInfoHeader(info, link)
			if err != nil {
				return err
			}
			h.Name = strings.TrimPrefix(filepath.Join(root, strings.TrimPrefix(p, full)), "/")
			if info.IsDir() {
				h.Name += "/"
			}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if !info.Mode().IsRegular() {
				return nil
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		})
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

func tarExtract(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean("/" + h.Name) // no escaping dir with ".."
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(h.Mode) & os.ModePerm
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, mode); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, p); err != nil {
				return err
			}
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unsupported entry type %q", h.Name, h.Typeflag)
		}
	}
}
