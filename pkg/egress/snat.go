package egress

import (
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

const natTable = "nat"

// maxChainLen is the length upstream truncates chain names to (iptables
// allows 28 characters).
const maxChainLen = 28

// ChainName is the per-pod nat chain: the family's prefix and the hex
// SHA-512 of network name + container ID, cut to 28 characters, as
// upstream names it (docs/compatibility.md, "IPv6 and egress-cni").
func ChainName(f Family, network, containerID string) string {
	sum := sha512.Sum512([]byte(network + containerID))
	return (f.ChainPrefix() + hex.EncodeToString(sum[:]))[:maxChainLen]
}

// Comment tags every rule of one pod.
func Comment(network, containerID string) string {
	return fmt.Sprintf("name: %q id: %q", network, containerID)
}

// iptablesFor returns the iptables or ip6tables of the family.
func iptablesFor(f Family) (*iptables.IPTables, error) {
	proto := iptables.ProtocolIPv4
	if f == V6 {
		proto = iptables.ProtocolIPv6
	}
	ipt, err := iptables.NewWithProtocol(proto)
	if err != nil {
		return nil, fmt.Errorf("%s iptables: %w", f, err)
	}
	return ipt, nil
}

// SNAT is the desired SNAT of one pod's egress address.
type SNAT struct {
	Family      Family
	Network     string
	ContainerID string
	PodIP       net.IP
	NodeIP      net.IP
	Mode        SNATMode
}

// rules returns the chain's rules in order.
func (s SNAT) rules(randomFully bool) [][]string {
	comment := []string{"-m", "comment", "--comment", Comment(s.Network, s.ContainerID)}
	multicast := "224.0.0.0/4"
	if s.Family == V6 {
		multicast = "ff00::/8"
	}
	snat := append(append([]string{}, comment...), "-j", "SNAT", "--to-source", s.NodeIP.String())
	switch {
	case s.Mode == SNATRandomFully && randomFully:
		snat = append(snat, "--random-fully")
	case s.Mode == SNATRandomFully, s.Mode == SNATHashRandom:
		// Without --random-fully support prng falls back to --random, as
		// upstream does.
		snat = append(snat, "--random")
	}
	return [][]string{
		append([]string{"-d", multicast}, append(comment, "-j", "ACCEPT")...),
		snat,
	}
}

func (s SNAT) jump(chain string) []string {
	bits := 32
	if s.Family == V6 {
		bits = 128
	}
	src := (&net.IPNet{IP: s.PodIP, Mask: net.CIDRMask(bits, bits)}).String()
	return []string{"-s", src, "-m", "comment", "--comment", Comment(s.Network, s.ContainerID), "-j", chain}
}

// Apply installs the pod's chain (replacing its content) and the
// POSTROUTING jump to it in one iptables-restore batch: on the ADD path
// every iptables run reloads the whole table, so runs are kept few.
func (s SNAT) Apply() error {
	ipt, err := iptablesFor(s.Family)
	if err != nil {
		return err
	}
	chain := ChainName(s.Family, s.Network, s.ContainerID)
	jump := s.jump(chain)
	exists, err := ipt.Exists(natTable, "POSTROUTING", jump...)
	if err != nil && !isNotExist(err) {
		return fmt.Errorf("look for the POSTROUTING jump to %s: %w", chain, err)
	}
	var b strings.Builder
	// Declaring an existing chain under --noflush flushes it: a repeated
	// ADD rewrites the rules.
	fmt.Fprintf(&b, "*nat\n:%s - [0:0]\n", chain)
	for _, r := range s.rules(ipt.HasRandomFully()) {
		fmt.Fprintf(&b, "-A %s %s\n", chain, restoreArgs(r))
	}
	if !exists {
		fmt.Fprintf(&b, "-A POSTROUTING %s\n", restoreArgs(jump))
	}
	b.WriteString("COMMIT\n")
	if err := restore(s.Family, b.String()); err != nil {
		return fmt.Errorf("install SNAT chain %s: %w", chain, err)
	}
	return nil
}

// RemoveSNAT deletes every POSTROUTING jump to the pod's chain, whatever
// its source address (the address may be unknown after a lost store), and
// the chain. Absent pieces are not errors.
func RemoveSNAT(f Family, network, containerID string) error {
	return RemoveChains(f, []string{ChainName(f, network, containerID)})
}

// RemoveJumps deletes the POSTROUTING jumps from the addresses srcs to
// the pod's chain, and the chain once no jump to it is left. A DEL, a
// failed ADD's undo and GC use it for one attachment while another
// attachment of the container holds an address: that attachment's jump
// keeps the shared chain.
func RemoveJumps(f Family, network, containerID string, srcs []netip.Addr) error {
	chain := ChainName(f, network, containerID)
	out, err := listNAT(f)
	if err != nil {
		return err
	}
	from := map[string]bool{}
	for _, a := range srcs {
		from[netip.PrefixFrom(a, a.BitLen()).String()] = true
	}
	var dels []string
	present, kept := false, false
	for _, line := range strings.Split(out, "\n") {
		spec := splitRule(line)
		switch {
		case len(spec) == 2 && spec[0] == "-N" && spec[1] == chain:
			present = true
		case len(spec) > 2 && spec[0] == "-A" && spec[1] == "POSTROUTING" && jumpsTo(spec, chain):
			if src, ok := ruleSource(spec); ok && from[src] {
				dels = append(dels, "-D "+strings.TrimPrefix(line, "-A "))
			} else {
				kept = true
			}
		}
	}
	var b strings.Builder
	for _, d := range dels {
		b.WriteString(d + "\n")
	}
	if present && !kept {
		fmt.Fprintf(&b, "-F %s\n-X %s\n", chain, chain)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := restore(f, "*nat\n"+b.String()+"COMMIT\n"); err != nil {
		return fmt.Errorf("remove the jumps from %v to SNAT chain %s: %w", srcs, chain, err)
	}
	return nil
}

// ruleSource returns the -s argument of a rule in -S form.
func ruleSource(spec []string) (string, bool) {
	for i := 0; i+1 < len(spec); i++ {
		if spec[i] == "-s" {
			p, err := netip.ParsePrefix(spec[i+1])
			if err != nil {
				return spec[i+1], true
			}
			return p.Masked().String(), true
		}
	}
	return "", false
}

// listNAT returns the nat table in -S form.
func listNAT(f Family) (string, error) {
	out, err := exec.Command(f.iptablesCmd(), "-w", "-t", natTable, "-S").Output()
	if err != nil {
		return "", fmt.Errorf("list the nat table: %w", cmdErr(err))
	}
	return string(out), nil
}

// RemoveChains removes the named chains and every POSTROUTING jump to them
// in one iptables-restore batch, after one listing of the nat table.
func RemoveChains(f Family, chains []string) error {
	out, err := listNAT(f)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, c := range chains {
		want[c] = true
	}
	var dels, present []string
	for _, line := range strings.Split(out, "\n") {
		spec := splitRule(line)
		switch {
		case len(spec) == 2 && spec[0] == "-N" && want[spec[1]]:
			present = append(present, spec[1])
		case len(spec) > 2 && spec[0] == "-A" && spec[1] == "POSTROUTING":
			for c := range want {
				if jumpsTo(spec, c) {
					dels = append(dels, "-D "+strings.TrimPrefix(line, "-A "))
				}
			}
		}
	}
	if len(dels) == 0 && len(present) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("*nat\n")
	for _, d := range dels {
		b.WriteString(d + "\n")
	}
	for _, c := range present {
		fmt.Fprintf(&b, "-F %s\n-X %s\n", c, c)
	}
	b.WriteString("COMMIT\n")
	if err := restore(f, b.String()); err != nil {
		return fmt.Errorf("remove SNAT chains %v: %w", chains, err)
	}
	return nil
}

// restore runs iptables-restore (ip6tables-restore) --noflush with input.
func restore(f Family, input string) error {
	cmd := exec.Command(f.iptablesCmd()+"-restore", "-w", "--noflush")
	cmd.Stdin = strings.NewReader(input)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s-restore: %w: %s (input:\n%s)", f.iptablesCmd(), err, strings.TrimSpace(stderr.String()), input)
	}
	return nil
}

// restoreArgs renders arguments for an iptables-restore line: arguments
// with spaces or quotes are double-quoted with backslash escapes.
func restoreArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \"\\") {
			a = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(a) + `"`
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

func (f Family) iptablesCmd() string {
	if f == V6 {
		return "ip6tables"
	}
	return "iptables"
}

func cmdErr(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}

// ChainRules returns the rules of the pod's chain in -S form, or nil when
// the chain does not exist.
func ChainRules(f Family, chain string) ([]string, error) {
	ipt, err := iptablesFor(f)
	if err != nil {
		return nil, err
	}
	ok, err := ipt.ChainExists(natTable, chain)
	if err != nil || !ok {
		return nil, err
	}
	return ipt.List(natTable, chain)
}

// JumpExists reports whether POSTROUTING sends the pod's address to chain.
func (s SNAT) JumpExists() (bool, error) {
	ipt, err := iptablesFor(s.Family)
	if err != nil {
		return false, err
	}
	return ipt.Exists(natTable, "POSTROUTING", s.jump(ChainName(s.Family, s.Network, s.ContainerID))...)
}

func jumpsTo(spec []string, chain string) bool {
	for i := 0; i+1 < len(spec); i++ {
		if (spec[i] == "-j" || spec[i] == "-g") && spec[i+1] == chain {
			return true
		}
	}
	return false
}

func isNotExist(err error) bool {
	var e *iptables.Error
	return errors.As(err, &e) && e.IsNotExist()
}

// splitRule splits one line of `iptables -S` into arguments: words, with
// double-quoted strings (backslash escapes inside) as single arguments.
func splitRule(line string) []string {
	var out []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == '"':
			quoted = !quoted
			inWord = true
		case c == ' ' && !quoted:
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}
