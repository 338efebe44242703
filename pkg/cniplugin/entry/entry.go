// Package entry is what vpc-cni's CNI plugins share around their commands,
// without the CNI library's skel package: the main-thread lock, the error
// codes that mean the same in every plugin, and Main, which reads the
// runtime's environment and stdin, checks them as the CNI spec (and skel)
// does and runs the command. skel's validation package compiles regular
// expressions at start-up; a plugin runs once per pod event, so aws-cni
// does without it (docs/compatibility.md, "Plugin (aws-cni) and runtime
// input").
package entry

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
	"golang.org/x/sys/unix"

	pkgversion "github.com/vpc-cni/vpc-cni/pkg/version"
)

func init() {
	// Namespace switches apply to OS threads: keep main on one thread, in
	// the node's namespace, for the whole run (an init-time lock binds the
	// main goroutine to the main thread).
	runtime.LockOSThread()
}

// CNI error codes every vpc-cni plugin uses with the same meaning. The CNI
// spec reserves 0-99 for itself.
const (
	// ErrNoAddress: no address could be had for the pod.
	ErrNoAddress uint = 101
	// ErrWiring: interfaces, addresses, routes, rules or SNAT rules could
	// not be set up or removed.
	ErrWiring uint = 103
	// ErrCheckFailed: CHECK found the wiring incomplete; the message lists
	// every missing piece.
	ErrCheckFailed uint = 105
)

// Error is a CNI error with code and msg, and err's text as details.
func Error(code uint, msg string, err error) *types.Error {
	details := ""
	if err != nil {
		details = err.Error()
	}
	return types.NewError(code, msg, details)
}

// Args is one command's input from the runtime.
type Args struct {
	ContainerID   string
	Netns         string
	IfName        string
	Args          string
	Path          string
	NetnsOverride string
	StdinData     []byte
}

// Funcs are a plugin's commands; a nil one succeeds without doing anything.
type Funcs struct {
	Add, Del, Check, GC, Status func(*Args) error
}

// Main runs the plugin named name (e.g. "aws-cni"): the command the
// environment names, with f, in every CNI spec version. It exits 1 after
// printing the error as the spec asks.
func Main(name string, f Funcs) {
	growStack()
	d := dispatcher{getenv: os.Getenv, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, versions: version.All}
	if e := d.run(f, About(name)); e != nil {
		if err := e.Print(); err != nil {
			fmt.Fprintln(os.Stderr, "writing the error to stdout:", err)
		}
		os.Exit(1)
	}
}

// About is what a plugin says of itself on stderr when run without a
// command.
func About(name string) string { return name + " (vpc-cni) " + pkgversion.Version }

// dispatcher holds a run's process interface, so tests can drive it.
type dispatcher struct {
	getenv   func(string) string
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer
	versions version.PluginInfo
}

// envVar is one of the spec's variables: the commands that require it and
// the check of its value in those commands.
type envVar struct {
	name     string
	required []string
	check    func(string) *types.Error
}

var (
	cmdsWithContainer = []string{"ADD", "CHECK", "DEL"}
	cmdsAll           = []string{"ADD", "CHECK", "DEL", "GC", "STATUS"}
)

// envVars in the order their problems are reported.
var envVars = []envVar{
	{"CNI_COMMAND", cmdsAll, nil},
	{"CNI_CONTAINERID", cmdsWithContainer, validateContainerID},
	{"CNI_NETNS", []string{"ADD", "CHECK"}, nil},
	{"CNI_IFNAME", cmdsWithContainer, validateIfName},
	{"CNI_ARGS", nil, nil},
	{"CNI_PATH", cmdsAll, nil},
	{"CNI_NETNS_OVERRIDE", nil, nil},
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parse reads the command, its input and the netconf's CNI version. A
// missing variable a command requires is reported after the values present
// were checked.
func (d dispatcher) parse() (string, *Args, string, *types.Error) {
	vals := make(map[string]string, len(envVars))
	cmd := d.getenv("CNI_COMMAND")
	var missing []string
	for _, v := range envVars {
		val := d.getenv(v.name)
		vals[v.name] = val
		req := contains(v.required, cmd)
		switch {
		case val == "" && (req || v.name == "CNI_COMMAND"):
			missing = append(missing, v.name)
		case val != "" && req && v.check != nil:
			if err := v.check(val); err != nil {
				return "", nil, "", err
			}
		}
	}
	if len(missing) > 0 {
		return "", nil, "", types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("required env variables [%s] missing", strings.Join(missing, ",")), "")
	}
	args := &Args{
		ContainerID: vals["CNI_CONTAINERID"], Netns: vals["CNI_NETNS"], IfName: vals["CNI_IFNAME"],
		Args: vals["CNI_ARGS"], Path: vals["CNI_PATH"], NetnsOverride: vals["CNI_NETNS_OVERRIDE"],
	}
	if cmd == "VERSION" {
		return cmd, args, "", nil
	}
	stdin, serr := readStdin(d.stdin)
	if serr != nil {
		return "", nil, "", serr
	}
	args.StdinData = stdin
	confVersion, verr := validateConfig(stdin)
	if verr != nil {
		return "", nil, "", verr
	}
	return cmd, args, confVersion, nil
}

func (d dispatcher) run(f Funcs, about string) *types.Error {
	cmd, args, confVersion, err := d.parse()
	if err != nil {
		if err.Code == types.ErrInvalidEnvironmentVariables && d.getenv("CNI_COMMAND") == "" && about != "" {
			_, _ = fmt.Fprintln(d.stderr, about)
			_, _ = fmt.Fprintf(d.stderr, "CNI protocol versions supported: %s\n", strings.Join(d.versions.SupportedVersions(), ", "))
			return nil
		}
		return err
	}
	switch cmd {
	case "ADD":
		return d.callInOtherNetNS(args, confVersion, f.Add)
	case "DEL":
		return d.callInOtherNetNS(args, confVersion, f.Del)
	case "CHECK":
		return d.callFrom(args, confVersion, "0.4.0", "CHECK", f.Check)
	case "GC":
		return d.callFrom(args, confVersion, "1.1.0", "GC", f.GC)
	case "STATUS":
		return d.callFrom(args, confVersion, "1.1.0", "STATUS", f.Status)
	case "VERSION":
		if err := d.versions.Encode(d.stdout); err != nil {
			return types.NewError(types.ErrIOFailure, err.Error(), "")
		}
		return nil
	}
	return types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("unknown CNI_COMMAND: %v", cmd), "")
}

// callInOtherNetNS calls fn, then refuses a CNI_NETNS that is the plugin's
// own namespace unless the runtime overrides that check.
func (d dispatcher) callInOtherNetNS(args *Args, confVersion string, fn func(*Args) error) *types.Error {
	if err := d.call(args, confVersion, fn); err != nil {
		return err
	}
	if o := args.NetnsOverride; strings.EqualFold(o, "TRUE") || o == "1" {
		return nil
	}
	return checkNotOwnNetNS(args.Netns)
}

// callFrom calls fn for a command that netconf versions from min on have.
func (d dispatcher) callFrom(args *Args, confVersion, min, cmd string, fn func(*Args) error) *types.Error {
	if ok, err := version.GreaterThanOrEqualTo(confVersion, min); err != nil {
		return types.NewError(types.ErrDecodingFailure, err.Error(), "")
	} else if !ok {
		return types.NewError(types.ErrIncompatibleCNIVersion, "config version does not allow "+cmd, "")
	}
	for _, v := range d.versions.SupportedVersions() {
		ok, err := version.GreaterThanOrEqualTo(v, confVersion)
		if err != nil {
			return types.NewError(types.ErrDecodingFailure, err.Error(), "")
		}
		if ok {
			return d.call(args, confVersion, fn)
		}
	}
	return types.NewError(types.ErrIncompatibleCNIVersion, "plugin version does not allow "+cmd, "")
}

// call checks the netconf's version against the plugin's and calls fn.
func (d dispatcher) call(args *Args, confVersion string, fn func(*Args) error) *types.Error {
	if verr := (&version.Reconciler{}).Check(confVersion, d.versions); verr != nil {
		return types.NewError(types.ErrIncompatibleCNIVersion, "incompatible CNI versions", verr.Details())
	}
	if fn == nil {
		return nil
	}
	if err := fn(args); err != nil {
		var e *types.Error
		if errors.As(err, &e) {
			return e
		}
		return types.NewError(types.ErrInternal, err.Error(), "")
	}
	return nil
}

// checkNotOwnNetNS fails when path is the calling thread's network
// namespace. A path that cannot be read (a namespace already gone) passes.
func checkNotOwnNetNS(path string) *types.Error {
	var target, own unix.Stat_t
	if err := unix.Stat(path, &target); err != nil {
		return nil
	}
	if err := unix.Stat("/proc/thread-self/ns/net", &own); err != nil {
		return types.NewError(types.ErrInvalidNetNS, "get plugin's netns failed", "")
	}
	if target.Dev == own.Dev && target.Ino == own.Ino {
		return types.NewError(types.ErrInvalidNetNS, "plugin's netns and netns from CNI_NETNS should not be the same", "")
	}
	return nil
}
