package entry

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/google/go-cmp/cmp"
)

// outcome is what a runtime sees of one run: the error, stdout and stderr,
// and which command ran with which input.
type outcome struct {
	Err            *types.Error
	Stdout, Stderr string
	Called         string
	Args           Args
}

// recorder returns Funcs (ours) and skel.CNIFuncs (the library's) whose
// commands record into o and return err.
func recorder(o *outcome, err error) (Funcs, skel.CNIFuncs) {
	ours := func(name string) func(*Args) error {
		return func(a *Args) error { o.Called, o.Args = name, *a; return err }
	}
	lib := func(name string) func(*skel.CmdArgs) error {
		return func(a *skel.CmdArgs) error {
			o.Called = name
			o.Args = Args{ContainerID: a.ContainerID, Netns: a.Netns, IfName: a.IfName, Args: a.Args, Path: a.Path, NetnsOverride: a.NetnsOverride, StdinData: a.StdinData}
			return err
		}
	}
	return Funcs{Add: ours("ADD"), Del: ours("DEL"), Check: ours("CHECK"), GC: ours("GC"), Status: ours("STATUS")},
		skel.CNIFuncs{Add: lib("ADD"), Del: lib("DEL"), Check: lib("CHECK"), GC: lib("GC"), Status: lib("STATUS")}
}

var allVars = []string{"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH", "CNI_NETNS_OVERRIDE"}

// runLibrary runs the CNI library's dispatcher with env and stdin through
// the process's environment and standard files, which is all it reads.
func runLibrary(t *testing.T, env map[string]string, stdin string, f skel.CNIFuncs, o *outcome) {
	t.Helper()
	for _, k := range allVars {
		t.Setenv(k, env[k])
	}
	files := [3]*os.File{}
	var err error
	for i := range files {
		if files[i], err = os.CreateTemp(t.TempDir(), "std"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := files[0].WriteString(stdin); err != nil {
		t.Fatal(err)
	}
	if _, err := files[0].Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	saved := [3]*os.File{os.Stdin, os.Stdout, os.Stderr}
	os.Stdin, os.Stdout, os.Stderr = files[0], files[1], files[2]
	o.Err = skel.PluginMainFuncsWithError(f, version.All, "about")
	os.Stdin, os.Stdout, os.Stderr = saved[0], saved[1], saved[2]
	out, _ := os.ReadFile(files[1].Name())
	errOut, _ := os.ReadFile(files[2].Name())
	o.Stdout, o.Stderr = string(out), string(errOut)
}

func runOurs(env map[string]string, stdin string, f Funcs, o *outcome) {
	var out, errOut bytes.Buffer
	d := dispatcher{getenv: func(k string) string { return env[k] }, stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut, versions: version.All}
	o.Err = d.run(f, "about")
	o.Stdout, o.Stderr = out.String(), errOut.String()
}

// TestMainAnswersAsTheCNILibrary runs the same inputs through Main's
// dispatcher and the CNI library's skel and wants the same error, output
// and command call from both: a runtime cannot tell them apart.
func TestMainAnswersAsTheCNILibrary(t *testing.T) {
	own, err := os.Readlink("/proc/self/ns/net")
	if err != nil || own == "" {
		t.Skip("no /proc/self/ns/net")
	}
	good := map[string]string{"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c-1.x_y", "CNI_NETNS": "/var/run/netns/none", "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin", "CNI_ARGS": "K8S_POD_NAME=p"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range good {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	conf := func(v string) string { return `{"cniVersion":"` + v + `","name":"aws-cni","type":"aws-cni"}` }
	for _, c := range []struct {
		name  string
		env   map[string]string
		stdin string
		err   error
	}{
		{"add", good, conf("1.0.0"), nil},
		{"add fails with a CNI error", good, conf("1.0.0"), types.NewError(101, "no address", "pool empty")},
		{"add fails with another error", good, conf("1.0.0"), errors.New("boom")},
		{"add in the plugin's own netns", with("CNI_NETNS", "/proc/self/ns/net"), conf("1.0.0"), nil},
		{"add in the plugin's own netns, overridden", with("CNI_NETNS", "/proc/self/ns/net", "CNI_NETNS_OVERRIDE", "true"), conf("1.0.0"), nil},
		{"del without netns", with("CNI_COMMAND", "DEL", "CNI_NETNS", ""), conf("0.3.1"), nil},
		{"del in the plugin's own netns", with("CNI_COMMAND", "DEL", "CNI_NETNS", "/proc/self/ns/net"), conf("1.0.0"), nil},
		{"check", with("CNI_COMMAND", "CHECK"), conf("1.0.0"), nil},
		{"check of an old config", with("CNI_COMMAND", "CHECK"), conf("0.3.1"), nil},
		{"gc", map[string]string{"CNI_COMMAND": "GC", "CNI_PATH": "/x"}, conf("1.1.0"), nil},
		{"gc of a 1.0 config", map[string]string{"CNI_COMMAND": "GC", "CNI_PATH": "/x"}, conf("1.0.0"), nil},
		{"status", map[string]string{"CNI_COMMAND": "STATUS", "CNI_PATH": "/x"}, conf("1.1.0"), nil},
		{"status without CNI_PATH", map[string]string{"CNI_COMMAND": "STATUS"}, conf("1.1.0"), nil},
		{"version", map[string]string{"CNI_COMMAND": "VERSION"}, "not read", nil},
		{"no command", map[string]string{}, conf("1.0.0"), nil},
		{"unknown command", with("CNI_COMMAND", "FROB"), conf("1.0.0"), nil},
		{"missing variables", map[string]string{"CNI_COMMAND": "ADD"}, conf("1.0.0"), nil},
		{"empty container id", with("CNI_CONTAINERID", ""), conf("1.0.0"), nil},
		{"stdin at the cap", good, padded(conf("1.0.0"), MaxStdin), nil},
		{"bad container id", with("CNI_CONTAINERID", "-x", "CNI_PATH", ""), conf("1.0.0"), nil},
		{"container id with a slash", with("CNI_CONTAINERID", "a/b"), conf("1.0.0"), nil},
		{"long ifname", with("CNI_IFNAME", "eth0123456789012"), conf("1.0.0"), nil},
		{"ifname with a colon", with("CNI_IFNAME", "eth0:1"), conf("1.0.0"), nil},
		{"ifname dot", with("CNI_IFNAME", ".."), conf("1.0.0"), nil},
		{"not json", good, "{", nil},
		{"no name", good, `{"cniVersion":"1.0.0"}`, nil},
		{"bad name", good, `{"cniVersion":"1.0.0","name":"a b"}`, nil},
		{"no version", good, `{"name":"n"}`, nil},
		{"unknown version", good, conf("9.9.9"), nil},
		{"bad version", good, conf("x"), nil},
		{"prevResult of another version", good, `{"cniVersion":"1.0.0","name":"n","prevResult":{"cniVersion":"0.4.0"}}`, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var lib, ours outcome
			_, libFuncs := recorder(&lib, c.err)
			ourFuncs, _ := recorder(&ours, c.err)
			runLibrary(t, c.env, c.stdin, libFuncs, &lib)
			runOurs(c.env, c.stdin, ourFuncs, &ours)
			if d := cmp.Diff(lib, ours); d != "" {
				t.Errorf("outcome differs from the CNI library's (-library +ours):\n%s", d)
			}
		})
	}
}

func TestValidName(t *testing.T) {
	for s, want := range map[string]bool{
		"": false, "a": true, "0": true, "_a": false, ".a": false, "-a": false, "a_b.c-d": true,
		"a b": false, "a/b": false, "é": false, "aé": false, "ABC123": true,
	} {
		if got := validName(s); got != want {
			t.Errorf("validName(%q) = %v, want %v", s, got, want)
		}
	}
}
