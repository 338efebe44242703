package networkutils

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// The kernel runs two iptables side by side: the legacy xtables and
// nf_tables' compatibility tables. ReconcileHost writes through one
// (cfg.IPTablesPath); rules of ours left in the other by an earlier run
// with the other binary (upstream's image picks legacy on legacy hosts,
// ours runs iptables-nft) would go on SNATing and marking with the old
// settings, so they are removed (docs/compatibility.md, "iptables and
// nftables").

// iptablesFlavour runs `<path> --version` and reports whether it is the
// legacy flavour (otherwise nf_tables).
func iptablesFlavour(ctx context.Context, path string) (legacy bool, err error) {
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("%s --version: %w (%s)", path, err, strings.TrimSpace(string(out)))
	}
	return strings.Contains(string(out), "legacy"), nil
}

// otherFlavour returns the binary of the other flavour next to path:
// iptables-legacy for an nf_tables iptables, iptables-nft for a legacy one.
func otherFlavour(path string, legacy bool) string {
	dir, base := filepath.Split(path)
	base = strings.TrimSuffix(strings.TrimSuffix(base, "-legacy"), "-nft")
	if legacy {
		return dir + base + "-nft"
	}
	return dir + base + "-legacy"
}

// ownedInSave lists, per table, what of ours an iptables-save dump holds:
// rules in shared chains (as "-A CHAIN spec" lines) and owned chains.
type ownedInSave struct {
	tables []string
	rules  map[string][]string
	chains map[string][]string
}

func parseSave(out string) (ownedInSave, error) {
	o := ownedInSave{rules: map[string][]string{}, chains: map[string][]string{}}
	table := ""
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		case strings.HasPrefix(l, ":"):
			name, _, _ := strings.Cut(l[1:], " ")
			if ownedChain(name) {
				o.chains[table] = append(o.chains[table], name)
			}
		case strings.HasPrefix(l, "-A "):
			toks, err := splitRule(l)
			if err != nil {
				return o, err
			}
			if !ownedChain(toks[1]) && ownedRule(iptRule(toks[2:])) {
				o.rules[table] = append(o.rules[table], l)
			}
		default:
			continue
		}
		if table != "" && (len(o.rules[table]) > 0 || len(o.chains[table]) > 0) && !slices.Contains(o.tables, table) {
			o.tables = append(o.tables, table)
		}
	}
	return o, nil
}

// purgeFlavour removes every rule and chain of ours from the iptables of
// binary bin (iptables-legacy, ip6tables-nft, ...). It reads with
// bin-save, which dumps only tables that exist, so a flavour nobody uses
// is not brought to life; a missing binary means nothing to do.
func purgeFlavour(ctx context.Context, bin string, changes *[]string) error {
	if strings.HasSuffix(bin, "-legacy") && !legacyTablesExist(strings.Contains(filepath.Base(bin), "ip6")) {
		return nil // the common case on nf_tables hosts, without an exec
	}
	save := bin + "-save"
	if _, err := exec.LookPath(save); err != nil {
		return nil
	}
	out, err := exec.CommandContext(ctx, save).Output()
	if err != nil {
		return fmt.Errorf("%s: %w", save, cmdErr(err))
	}
	o, err := parseSave(string(out))
	if err != nil {
		return fmt.Errorf("%s: %w", save, err)
	}
	if len(o.tables) == 0 {
		return nil
	}
	var in strings.Builder
	var done []string
	for _, t := range o.tables {
		fmt.Fprintf(&in, "*%s\n", t)
		for _, r := range o.rules[t] {
			d := "-D " + strings.TrimPrefix(r, "-A ")
			in.WriteString(d + "\n")
			done = append(done, fmt.Sprintf("%s -t %s %s", filepath.Base(bin), t, d))
		}
		// Flush all before deleting any: our chains may jump to each other.
		for _, c := range o.chains[t] {
			fmt.Fprintf(&in, "-F %s\n", c)
		}
		for _, c := range o.chains[t] {
			fmt.Fprintf(&in, "-X %s\n", c)
			done = append(done, fmt.Sprintf("%s -t %s -X %s", filepath.Base(bin), t, c))
		}
		in.WriteString("COMMIT\n")
	}
	restore := exec.CommandContext(ctx, bin+"-restore", "-w", "--noflush")
	restore.Stdin = strings.NewReader(in.String())
	if out, err := restore.CombinedOutput(); err != nil {
		return fmt.Errorf("%s-restore: %w: %s (input:\n%s)", bin, err, strings.TrimSpace(string(out)), in.String())
	}
	*changes = append(*changes, done...)
	return nil
}

// legacyTablesExist reports whether the calling thread's network namespace
// has any legacy xtables table of the family (the kernel lists them in
// ip_tables_names / ip6_tables_names; neither file exists without the
// legacy modules). When unsure it says yes.
func legacyTablesExist(v6 bool) bool {
	name := "ip_tables_names"
	if v6 {
		name = "ip6_tables_names"
	}
	b, err := os.ReadFile("/proc/thread-self/net/" + name)
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	return err != nil || len(strings.TrimSpace(string(b))) > 0
}

func cmdErr(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}
