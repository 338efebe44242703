package egress

import (
	"fmt"
	"os/exec"
	"strings"
)

// CNI GC is per network (CNI spec 1.1): a network's GC may remove only its
// own attachments. Chain names are a hash of network + container ID, so
// they cannot tell networks apart; the comment every rule of a pod's chain
// and its POSTROUTING jump carry names the network (Comment, the format
// upstream uses too, so chains made by upstream's plugin are recognised).

// ChainNetworks maps each of the family's per-pod chains in the nat table
// to the network its rules' comment names ("" when no rule of it carries
// one).
func ChainNetworks(f Family) (map[string]string, error) {
	out, err := exec.Command(f.iptablesCmd(), "-w", "-t", natTable, "-S").Output()
	if err != nil {
		return nil, fmt.Errorf("list the nat table: %w", cmdErr(err))
	}
	return chainNetworks(string(out), f.ChainPrefix()), nil
}

// chainNetworks reads `iptables -t nat -S` output: the chains whose names
// start with prefix, each with the network named by the comment of a rule
// in it or of a POSTROUTING rule jumping to it.
func chainNetworks(nat, prefix string) map[string]string {
	owners := map[string]string{}
	for _, line := range strings.Split(nat, "\n") {
		spec := splitRule(line)
		switch {
		case len(spec) == 2 && spec[0] == "-N" && strings.HasPrefix(spec[1], prefix):
			if _, ok := owners[spec[1]]; !ok {
				owners[spec[1]] = ""
			}
		case len(spec) > 2 && spec[0] == "-A":
			chain := spec[1]
			if chain == "POSTROUTING" {
				chain = jumpTarget(spec)
			}
			if !strings.HasPrefix(chain, prefix) {
				continue
			}
			if n, ok := commentNetwork(spec); ok && owners[chain] == "" {
				owners[chain] = n
			}
		}
	}
	return owners
}

// jumpTarget is the chain a rule jumps (or goes) to, "" for none.
func jumpTarget(spec []string) string {
	for i := 0; i+1 < len(spec); i++ {
		if spec[i] == "-j" || spec[i] == "-g" {
			return spec[i+1]
		}
	}
	return ""
}

// commentNetwork parses the network out of a rule's Comment.
func commentNetwork(spec []string) (string, bool) {
	for i := 0; i+1 < len(spec); i++ {
		if spec[i] != "--comment" {
			continue
		}
		var network, id string
		if _, err := fmt.Sscanf(spec[i+1], "name: %q id: %q", &network, &id); err == nil {
			return network, true
		}
	}
	return "", false
}
