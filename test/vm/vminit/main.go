// Command vminit is /init of the VM test tier's guest. It mounts the
// pseudo file systems, loads the kernel modules listed in /modules.order,
// runs each test binary named in /tests.json with its output on the serial
// console, prints one result line the host parses, and powers the guest
// off. It is static Go so the initramfs needs no shell or busybox.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/test/vm/vmenv"
)

func main() {
	err := run()
	if err != nil {
		fmt.Printf("\n%sFAIL %v\n", vmenv.ResultPrefix, err)
	} else {
		fmt.Printf("\n%sPASS\n", vmenv.ResultPrefix)
	}
	unix.Sync()
	// With -no-reboot qemu exits when the guest powers off (or panics,
	// should power-off fail and init exit).
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	os.Exit(1)
}

func run() error {
	if err := mountAll(); err != nil {
		return err
	}
	console()
	fmt.Printf("vminit: kernel %s, uptime %s\n", release(), uptime())
	if err := loadModules(vmenv.ModuleOrder, vmenv.ModuleDir); err != nil {
		return err
	}
	tests, err := readTests(vmenv.TestList)
	if err != nil {
		return err
	}
	var failed []string
	for _, t := range tests {
		fmt.Printf("vminit: BEGIN %s at uptime %s\n", t.Name, uptime())
		cmd := exec.Command(t.Path, t.Args...)
		cmd.Env = append([]string{"PATH=/bin", "HOME=/tmp", "TMPDIR=/tmp"}, t.Env...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
		cmd.Dir = "/tmp"
		err := cmd.Run()
		fmt.Printf("vminit: END %s at uptime %s: %v\n", t.Name, uptime(), errOrOK(err))
		if err != nil {
			failed = append(failed, t.Name)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

func errOrOK(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func mountAll() error {
	for _, m := range []struct{ src, dir, fstype string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/tmp", "tmpfs"},
		// Network namespaces are bind-mounted under /var/run/netns.
		{"tmpfs", "/var/run", "tmpfs"},
	} {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", m.dir, err)
		}
		if err := unix.Mount(m.src, m.dir, m.fstype, 0, ""); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.dir, err)
		}
	}
	return nil
}

// console points stdout and stderr at the serial console: the kernel gives
// init a console only when the initramfs has /dev/console.
func console() {
	f, err := os.OpenFile("/dev/console", os.O_WRONLY, 0)
	if err != nil {
		return
	}
	_ = unix.Dup3(int(f.Fd()), 1, 0)
	_ = unix.Dup3(int(f.Fd()), 2, 0)
}

func loadModules(order, dir string) error {
	data, err := os.ReadFile(order)
	if err != nil {
		return fmt.Errorf("read module list: %w", err)
	}
	for _, name := range strings.Fields(string(data)) {
		path := filepath.Join(dir, name)
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("open module %s: %w", path, err)
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		if err != nil && err != unix.EEXIST {
			return fmt.Errorf("load module %s: %w", name, err)
		}
	}
	fmt.Printf("vminit: loaded modules %s\n", strings.Join(strings.Fields(string(data)), " "))
	return nil
}

func readTests(path string) ([]vmenv.Test, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read test list: %w", err)
	}
	var tests []vmenv.Test
	if err := json.Unmarshal(data, &tests); err != nil {
		return nil, fmt.Errorf("parse test list %s: %w", path, err)
	}
	if len(tests) == 0 {
		return nil, fmt.Errorf("test list %s is empty", path)
	}
	return tests, nil
}

func release() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

func uptime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano()).Round(time.Millisecond)
}
