package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
)

// upProgress tells the user on stderr what `localvpc up` is doing while it
// starts, one line per step: that takes seconds, longer on a loaded
// machine, and stdout stays silent until the VPC is up (its format is read
// by tests and README.md, so progress goes elsewhere).
type upProgress struct {
	w     io.Writer
	start time.Time
}

func (p upProgress) step(format string, a ...any) {
	fmt.Fprintf(p.w, "localvpc up: %s (%.1fs)\n", fmt.Sprintf(format, a...), time.Since(p.start).Seconds())
}

// startAgents is localvpc's StartAgents (every agent started, then each
// waited for) with a line per node as it starts and as it is ready.
func (p upProgress) startAgents(ctx context.Context, v *localvpc.VPC, env []string) error {
	nodes := v.Nodes()
	for _, n := range nodes {
		p.step("starting aws-node on %s (%s)", n.Name, n.ID)
		if err := v.StartAgent(ctx, n, env); err != nil {
			return err
		}
	}
	for i, n := range nodes {
		if err := v.WaitReady(ctx, n, nil); err != nil {
			return err
		}
		p.step("node %s (%s) up, %d of %d", n.Name, n.ID, i+1, len(nodes))
	}
	return nil
}
