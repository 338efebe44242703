// Package vm is the VM test tier: it boots a second kernel, Debian's cloud
// kernel with 802.1Q, under qemu with an initramfs of the project's own
// static test binaries, and reads their verdict from the serial console.
// It exists because the host kernel lacks 802.1Q, so the branch-ENI VLAN
// path can run for real only there (docs/compatibility.md, "Security
// groups for pods").
package vm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vpc-cni/vpc-cni/test/vm/vmenv"
)

// Kernel is a guest kernel cached by scripts/vm-kernel.sh.
type Kernel struct {
	Dir     string
	Version string
	// Modules are the .ko files to load, dependencies first.
	Modules []string
}

// PrepareKernel runs scripts/vm-kernel.sh in repo, which installs qemu
// and fetches the kernel into the cache on first use. The error says why
// the tier cannot run.
func PrepareKernel(ctx context.Context, repo string) (Kernel, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(repo, "scripts", "vm-kernel.sh"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return Kernel{}, fmt.Errorf("scripts/vm-kernel.sh: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	k := Kernel{Dir: strings.TrimSpace(string(out))}
	v, err := os.ReadFile(filepath.Join(k.Dir, "version"))
	if err != nil {
		return Kernel{}, fmt.Errorf("kernel cache %s: %w", k.Dir, err)
	}
	k.Version = strings.TrimSpace(string(v))
	order, err := os.ReadFile(filepath.Join(k.Dir, "modules.order"))
	if err != nil {
		return Kernel{}, fmt.Errorf("kernel cache %s: %w", k.Dir, err)
	}
	k.Modules = strings.Fields(string(order))
	return k, nil
}

// Binary is a static host binary the guest runs with Args and Env.
type Binary struct {
	Name     string
	HostPath string
	Args     []string
	Env      []string
}

// Guest is what the initramfs holds besides the kernel's modules.
type Guest struct {
	// Init is the host path of the guest's /init (test/vm/vminit).
	Init string
	// Tests run in order, each from /bin/<Name>.
	Tests []Binary
	// Files are other host files the tests need, by guest path.
	Files map[string]string
}

// WriteInitramfs writes the guest's initramfs to path: g.Init as /init,
// the kernel's modules, g's binaries and files, and the list /init runs.
func WriteInitramfs(path string, k Kernel, g Guest) error {
	r := NewInitramfs()
	var tests []vmenv.Test
	steps := []func() error{
		func() error { return r.AddFile("init", g.Init, 0o755) },
		// Without /dev/console the kernel starts init with no stdout.
		func() error { return r.AddCharDev("dev/console", 5, 1) },
	}
	for _, d := range []string{"proc", "sys", "tmp", "var/run", "bin"} {
		steps = append(steps, func() error { return r.AddDir(d) })
	}
	for _, m := range k.Modules {
		steps = append(steps, func() error {
			return r.AddFile(filepath.Join(vmenv.ModuleDir, m), filepath.Join(k.Dir, "modules", m), 0o644)
		})
	}
	for _, b := range g.Tests {
		guest := "/bin/" + b.Name
		tests = append(tests, vmenv.Test{Name: b.Name, Path: guest, Args: b.Args, Env: b.Env})
		steps = append(steps, func() error { return r.AddFile(guest, b.HostPath, 0o755) })
	}
	for guest, host := range g.Files {
		steps = append(steps, func() error { return r.AddFile(guest, host, 0o755) })
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	list, err := json.Marshal(tests)
	if err != nil {
		return fmt.Errorf("encode test list: %w", err)
	}
	if err := r.AddData(vmenv.TestList, list, 0o644); err != nil {
		return err
	}
	if err := r.AddData(vmenv.ModuleOrder, []byte(strings.Join(k.Modules, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create initramfs: %w", err)
	}
	if _, err := r.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write initramfs %s: %w", path, err)
	}
	return f.Close()
}

// qboot is a minimal firmware that only boots a Linux kernel.
const qboot = "/usr/share/qemu/qboot.rom"

// Result is what one guest run printed and concluded.
type Result struct {
	// Output is the whole serial console.
	Output string
	// Passed is true only when the guest printed a PASS verdict.
	Passed bool
	// Verdict is the text after the result prefix, or why there is none.
	Verdict string
	Elapsed time.Duration
	// Accel is the qemu accelerator used: kvm, or tcg (software).
	Accel string
}

// Boot runs the guest until it powers off or ctx ends. live, if not nil,
// receives the console as it is printed. An error means qemu could not
// run to completion; a guest that ran and failed is a Result with
// Passed false.
func Boot(ctx context.Context, k Kernel, initrd string, live io.Writer) (Result, error) {
	res := Result{Accel: accel()}
	args := []string{
		"-m", "512", "-smp", "2", "-accel", res.Accel,
		"-nographic", "-monitor", "none", "-no-reboot", "-nodefaults", "-serial", "stdio",
		"-kernel", filepath.Join(k.Dir, "vmlinuz"), "-initrd", initrd,
		// noapic: under emulation the kernel panics on the IO-APIC timer
		// check without it. panic=-1: a crashed guest ends qemu at once.
		// Expedited RCU: namespace and link removal wait for RCU grace
		// periods, which are slow under emulation. mitigations=off: page
		// table isolation flushes the emulator's TLB on every system call.
		"-append", "console=ttyS0 rdinit=/init panic=-1 noapic quiet rcupdate.rcu_expedited=1 mitigations=off",
	}
	// qboot, which Debian ships with qemu, hands over to the kernel seconds
	// sooner than the default SeaBIOS under emulation.
	if _, err := os.Stat(qboot); err == nil {
		args = append(args, "-bios", qboot)
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.Stdout = &out
	if live != nil {
		cmd.Stdout = io.MultiWriter(&out, live)
	}
	cmd.Stderr = cmd.Stdout
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	res.Elapsed = time.Since(start)
	res.Output = strings.ReplaceAll(out.String(), "\r\n", "\n")
	res.Passed, res.Verdict = ParseVerdict(res.Output)
	if ctx.Err() != nil {
		return res, fmt.Errorf("guest did not power off within %s: %w", res.Elapsed.Round(time.Second), ctx.Err())
	}
	if err != nil {
		return res, fmt.Errorf("qemu-system-x86_64: %w", err)
	}
	return res, nil
}

// ParseVerdict finds the guest's last result line in console output.
func ParseVerdict(output string) (passed bool, verdict string) {
	i := strings.LastIndex(output, vmenv.ResultPrefix)
	if i < 0 {
		return false, "no result line on the console: the guest crashed or was stopped before /init finished"
	}
	line, _, _ := strings.Cut(output[i+len(vmenv.ResultPrefix):], "\n")
	line = strings.TrimSpace(line)
	return line == "PASS", line
}

// AccelEnv overrides the qemu accelerator, e.g. kvm where nested
// virtualisation works. The default is software emulation (tcg): on this
// project's CI machines /dev/kvm is absent or, nested, opens but hangs the
// guest before its first console line.
const AccelEnv = "VPC_CNI_VM_ACCEL"

func accel() string {
	if a := os.Getenv(AccelEnv); a != "" {
		return a
	}
	return "tcg"
}
