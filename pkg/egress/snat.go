package egress

import (
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
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
// POSTROUTING jump to it.
func (s SNAT) Apply() error {
	ipt, err := iptablesFor(s.Family)
	if err != nil {
		return err
	}
	chain := ChainName(s.Family, s.Network, s.ContainerID)
	if err := ipt.ClearChain(natTable, chain); err != nil {
		return fmt.Errorf("create chain %s: %w", chain, err)
	}
	for _, r := range s.rules(ipt.HasRandomFully()) {
		if err := ipt.Append(natTable, chain, r...); err != nil {
			return fmt.Errorf("append to %s: %w", chain, err)
		}
	}
	if err := ipt.AppendUnique(natTable, "POSTROUTING", s.jump(chain)...); err != nil {
		return fmt.Errorf("jump to %s from POSTROUTING: %w", chain, err)
	}
	return nil
}

// RemoveSNAT deletes every POSTROUTING jump to the pod's chain, whatever
// its source address (the address may be unknown after a lost store), and
// the chain. Absent pieces are not errors.
func RemoveSNAT(f Family, network, containerID string) error {
	ipt, err := iptablesFor(f)
	if err != nil {
		return err
	}
	return removeChain(ipt, ChainName(f, network, containerID))
}

func removeChain(ipt *iptables.IPTables, chain string) error {
	rules, err := ipt.List(natTable, "POSTROUTING")
	if err != nil {
		return fmt.Errorf("list POSTROUTING: %w", err)
	}
	var errs []error
	for _, r := range rules {
		spec := splitRule(r)
		if len(spec) < 2 || spec[0] != "-A" || !jumpsTo(spec, chain) {
			continue
		}
		if err := ipt.DeleteIfExists(natTable, "POSTROUTING", spec[2:]...); err != nil {
			errs = append(errs, fmt.Errorf("delete POSTROUTING jump to %s: %w", chain, err))
		}
	}
	if err := ipt.ClearAndDeleteChain(natTable, chain); err != nil && !isNotExist(err) {
		errs = append(errs, fmt.Errorf("delete chain %s: %w", chain, err))
	}
	return errors.Join(errs...)
}

// Chains lists the family's per-pod chains in the nat table.
func Chains(f Family) ([]string, error) {
	ipt, err := iptablesFor(f)
	if err != nil {
		return nil, err
	}
	all, err := ipt.ListChains(natTable)
	if err != nil {
		return nil, fmt.Errorf("list nat chains: %w", err)
	}
	var out []string
	for _, c := range all {
		if strings.HasPrefix(c, f.ChainPrefix()) {
			out = append(out, c)
		}
	}
	return out, nil
}

// RemoveChains removes the named chains and the jumps to them.
func RemoveChains(f Family, chains []string) error {
	ipt, err := iptablesFor(f)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range chains {
		errs = append(errs, removeChain(ipt, c))
	}
	return errors.Join(errs...)
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
