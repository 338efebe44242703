package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/introspect"
)

// render writes the pool as a human reads it: targets first, then one line
// per ENI, then what ipamd is waiting on.
func render(w io.Writer, p introspect.Pool, now time.Time) {
	t := p.Targets
	fmt.Fprintf(w, "mode %s   targets: WARM_ENI_TARGET=%d WARM_IP_TARGET=%d MINIMUM_IP_TARGET=%d WARM_PREFIX_TARGET=%d   max ENIs %d, max pods %d, cooldown %ds\n",
		p.Mode, t.WarmENI, t.WarmIP, t.MinimumIP, t.WarmPrefix, t.MaxENI, t.MaxPods, t.CooldownSeconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CARD\tENI\tDEV\tROLE\tHOLDS\tUSED\tFREE\tCOOLING\tUSE")
	for _, c := range p.Cards {
		for _, e := range c.ENIs {
			cooling := fmt.Sprint(e.Cooling)
			if e.Cooling > 0 && e.CoolingUntil.After(now) {
				cooling += fmt.Sprintf(" (%ds)", int(e.CoolingUntil.Sub(now).Seconds()+0.5))
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%d\t%d\t%s\t%s\n",
				c.Index, e.ID, e.Device, role(e), holds(e), e.Used, e.Free, cooling, bar(e.Used, e.Cooling, e.Free))
		}
		fmt.Fprintf(tw, "%d\ttotal\t\t\t\t%d\t%d\t%d\t\n", c.Index, c.Used, c.Free, c.Cooling)
	}
	_ = tw.Flush()
	for _, c := range p.Cards {
		if c.Quarantined > 0 {
			// On no ENI, so in no row above; an operator looking for a
			// missing address finds it here (docs/compatibility.md, "Pods
			// whose address EC2 takes away").
			fmt.Fprintf(w, "card %d: quarantined %d (pods whose address EC2 took away; no other pod gets it until their DEL)\n", c.Index, c.Quarantined)
		}
	}
	if p.LastAction != "" {
		fmt.Fprintf(w, "last action: %s (%s ago)\n", p.LastAction, now.Sub(p.LastActionTime).Round(time.Second))
	}
	if p.WaitingADDs > 0 {
		fmt.Fprintf(w, "ADDs waiting for an address: %d\n", p.WaitingADDs)
	}
	if len(p.WaitingOn) == 0 {
		fmt.Fprintln(w, "waiting on: nothing")
		return
	}
	fmt.Fprintln(w, "waiting on:")
	for _, a := range p.WaitingOn {
		fmt.Fprintf(w, "  %-10s %s (for %s)\n", a.Kind, a.What, now.Sub(a.Since).Round(100*time.Millisecond))
	}
}

func role(e introspect.ENIPool) string {
	var r []string
	if e.Primary {
		r = append(r, "primary")
	}
	if e.Trunk {
		r = append(r, "trunk")
	}
	if e.Excluded {
		r = append(r, "excluded")
	}
	if len(r) == 0 {
		return "-"
	}
	return strings.Join(r, ",")
}

func holds(e introspect.ENIPool) string {
	switch {
	case e.Prefixes > 0 && e.Secondary > 0:
		return fmt.Sprintf("%d prefixes + %d IPs", e.Prefixes, e.Secondary)
	case e.Prefixes > 0:
		return fmt.Sprintf("%d prefixes", e.Prefixes)
	default:
		return fmt.Sprintf("%d IPs", e.Secondary)
	}
}

// bar draws used (#), cooling (~) and free (.) addresses, one mark each up
// to 32 marks, scaled beyond that.
func bar(used, cooling, free int) string {
	total := used + cooling + free
	if total == 0 {
		return ""
	}
	scale := 1.0
	if total > 32 {
		scale = 32 / float64(total)
	}
	n := func(v int) int { return int(float64(v)*scale + 0.5) }
	return "[" + strings.Repeat("#", n(used)) + strings.Repeat("~", n(cooling)) + strings.Repeat(".", n(free)) + "]"
}
