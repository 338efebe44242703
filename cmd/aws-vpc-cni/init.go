package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// The init container (docs/compatibility.md, "Entrypoint and init
// container"): copy the core CNI plugins shipped next to this binary to the
// host, then set the node sysctls the data path needs. It runs privileged in
// the host network namespace.

// sysctl is one /proc/sys write.
type sysctl struct {
	Key      string // e.g. net/ipv4/tcp_early_demux
	Value    string
	Optional bool // skipped when the kernel does not have it
}

type initConfig struct {
	HostCNIBinPath       string
	IPv6                 bool // ENABLE_IPv6
	V6Egress             bool // ENABLE_V6_EGRESS
	DisableTCPEarlyDemux bool // DISABLE_TCP_EARLY_DEMUX
}

func parseInitConfig(lookup func(string) (string, bool)) (initConfig, []string) {
	p := envParser{lookup: lookup}
	c := initConfig{
		HostCNIBinPath:       p.str("HOST_CNI_BIN_PATH", "/host/opt/cni/bin"),
		IPv6:                 p.boolean("ENABLE_IPv6", false),
		V6Egress:             p.boolean("ENABLE_V6_EGRESS", false),
		DisableTCPEarlyDemux: p.boolean("DISABLE_TCP_EARLY_DEMUX", false),
	}
	return c, p.warnings
}

// planSysctls lists the writes for the node whose primary interface is
// primaryIf, in order.
func planSysctls(c initConfig, primaryIf string) []sysctl {
	demux := "1"
	if c.DisableTCPEarlyDemux {
		demux = "0"
	}
	out := []sysctl{
		// Loose reverse-path filtering: replies to pods on secondary ENIs
		// arrive on the primary interface.
		{Key: "net/ipv4/conf/" + primaryIf + "/rp_filter", Value: "2"},
		{Key: "net/ipv4/tcp_early_demux", Value: demux, Optional: true},
	}
	if c.IPv6 {
		out = append(out, sysctl{Key: "net/ipv6/conf/all/disable_ipv6", Value: "0"})
	}
	if c.IPv6 || c.V6Egress {
		out = append(out,
			sysctl{Key: "net/ipv6/conf/all/forwarding", Value: "1"},
			// Forwarding turns router advertisements off; 2 keeps the
			// node's own default route from RAs.
			sysctl{Key: "net/ipv6/conf/" + primaryIf + "/accept_ra", Value: "2"},
		)
	}
	return out
}

func applySysctls(procSys string, list []sysctl) error {
	for _, s := range list {
		path := filepath.Join(procSys, s.Key)
		if err := os.WriteFile(path, []byte(s.Value), 0o644); err != nil {
			if s.Optional && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(s.Key, "/", "."), s.Value, err)
		}
	}
	return nil
}

// interfaceByMAC returns the name of the link with the given MAC.
func interfaceByMAC(mac string) (string, error) {
	want, err := net.ParseMAC(mac)
	if err != nil {
		return "", fmt.Errorf("primary MAC %q from IMDS: %w", mac, err)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return "", fmt.Errorf("list interfaces: %w", err)
	}
	for _, i := range ifs {
		if i.HardwareAddr.String() == want.String() {
			return i.Name, nil
		}
	}
	return "", fmt.Errorf("no interface has the primary ENI's MAC %s", mac)
}

type initOptions struct {
	dir     string // plugins to copy
	self    string // this binary, not copied
	procSys string
}

// runInit returns the exit code of the init container.
func runInit(ctx context.Context, log *slog.Logger, lookup func(string) (string, bool), imds func() (nodeIdentity, error), o initOptions) int {
	cfg, warnings := parseInitConfig(lookup)
	for _, w := range warnings {
		log.Warn("environment: " + w)
	}
	if err := copyDir(log, o.dir, o.self, cfg.HostCNIBinPath); err != nil {
		log.Error("copying CNI plugins failed", "err", err)
		return 1
	}
	md, err := imds()
	if err != nil {
		log.Error("IMDS client", "err", err)
		return 1
	}
	id, err := md.Identity(ctx)
	if err != nil {
		log.Error("reading the primary MAC from IMDS failed", "err", err)
		return 1
	}
	primary, err := interfaceByMAC(id.PrimaryMAC)
	if err != nil {
		log.Error("finding the primary interface failed", "err", err)
		return 1
	}
	if err := applySysctls(o.procSys, planSysctls(cfg, primary)); err != nil {
		log.Error("setting sysctls failed", "err", err)
		return 1
	}
	log.Info("node initialised", "primary", primary, "plugins", cfg.HostCNIBinPath)
	return 0
}

// copyDir installs every regular file of dir except self into dst.
func copyDir(log *slog.Logger, dir, self, dst string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	for _, e := range entries {
		src := filepath.Join(dir, e.Name())
		if !e.Type().IsRegular() || sameFile(src, self) {
			continue
		}
		if err := installFile(src, filepath.Join(dst, e.Name())); err != nil {
			return err
		}
		log.Info("installed CNI plugin", "plugin", e.Name(), "dir", dst)
	}
	return nil
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
