package dataplane

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"sort"
	"strings"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// sgState is the security-group enforcement state, owned by the Dataplane
// under its mutex.
type sgState struct {
	known   bool // a SecurityGroupsChanged has arrived
	sec     vpcsim.SecurityGroupsChanged
	chains  []string // chains of the applied plan
	applied string   // script last applied, to skip no-op updates
}

// SetSecurity enforces the security configuration in sec from now on: every
// plugged ENI's groups filter, statefully, what it sends and receives.
// Until the first call nothing is filtered.
func (d *Dataplane) SetSecurity(sec vpcsim.SecurityGroupsChanged) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sg.known, d.sg.sec = true, sec
	return d.applySGLocked()
}

// applySGLocked renders the table for the current ports and applies it
// when it changed. Called after every plug and unplug.
func (d *Dataplane) applySGLocked() error {
	if !d.sg.known || d.closed {
		return nil
	}
	var ports []sgPort
	for _, e := range d.enis {
		if e.node != "" && e.link != "" {
			ports = append(ports, sgPort{eniID: e.id, link: e.link})
		}
	}
	plan := planSG(d.sg.sec, ports, nil)
	var stale []string
	for _, c := range d.sg.chains {
		if !slices.Contains(plan.chains, c) {
			stale = append(stale, c)
		}
	}
	if len(stale) > 0 {
		plan = planSG(d.sg.sec, ports, stale)
	} else if plan.script == d.sg.applied {
		return nil
	}
	if err := nftApply(d.vpcPath, plan.script); err != nil {
		return fmt.Errorf("security groups: %w", err)
	}
	d.sg.chains, d.sg.applied = plan.chains, plan.script
	return nil
}

// nftApply runs an nft script in the namespace at nsPath as one
// transaction.
func nftApply(nsPath, script string) error {
	cmd := exec.Command("nsenter", "--net="+nsPath, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft in %s: %w: %s", nsPath, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// SGDrop counts the packets an ENI's security groups dropped in one
// direction: none of the listed groups had a rule allowing them.
type SGDrop = vpcsim.SGDrop

// SGDrops reads the drop counters of every ENI that has dropped or may drop
// packets, sorted by ENI and direction.
func (d *Dataplane) SGDrops() ([]SGDrop, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.sg.known || d.closed {
		return []SGDrop{}, nil
	}
	cmd := exec.Command("nsenter", "--net="+d.vpcPath, "nft", "-j", "list", "counters", "table", "inet", sgTable)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("read security group counters: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Name    string `json:"name"`
				Packets uint64 `json:"packets"`
				Bytes   uint64 `json:"bytes"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		return nil, fmt.Errorf("parse nft counters: %w", err)
	}
	groups := map[string][]string{}
	for _, e := range d.sg.sec.ENIs {
		groups[nftName(e.ENIID)] = e.Groups
	}
	byName := map[string]string{} // counter-name ENI part → ENI id
	for _, e := range d.sg.sec.ENIs {
		byName[nftName(e.ENIID)] = e.ENIID
	}
	out := []SGDrop{}
	for _, o := range doc.Nftables {
		c := o.Counter
		if c == nil {
			continue
		}
		dir, rest, ok := strings.Cut(strings.TrimPrefix(c.Name, "drop_"), "_")
		if !ok || (dir != "in" && dir != "out") {
			continue
		}
		id := byName[rest]
		if id == "" {
			id = strings.ReplaceAll(rest, "_", "-") // the ENI is gone; its count stays readable
		}
		dirName := "ingress"
		if dir == "out" {
			dirName = "egress"
		}
		out = append(out, SGDrop{ENIID: id, Direction: dirName, Groups: slices.Clone(groups[rest]), Packets: c.Packets, Bytes: c.Bytes})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ENIID != out[j].ENIID {
			return out[i].ENIID < out[j].ENIID
		}
		return out[i].Direction < out[j].Direction
	})
	return out, nil
}
