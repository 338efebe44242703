package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/version"
)

// sbsOptions are the side-by-side flags. The compare binaries are only
// ever run, never fetched or built: the user supplies them.
type sbsOptions struct {
	compareIPAMD, comparePlugin string
	enabled, figures            bool
}

func (s *sbsOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&s.compareIPAMD, "compare-ipamd", "", "an aws-node-compatible ipamd binary to run side by side with ours (e.g. upstream's aws-k8s-agent, built by you); needs -compare-plugin")
	fs.StringVar(&s.comparePlugin, "compare-plugin", "", "the CNI plugin binary that goes with -compare-ipamd (installed as aws-cni)")
	fs.BoolVar(&s.enabled, "sidebyside", true, "run the side-by-side pool scenario (ours alone without -compare-ipamd)")
	fs.BoolVar(&s.figures, "figures", true, "measure figures 1-13 (-figures=false: the side-by-side scenario only)")
}

func (s *sbsOptions) validate() error {
	switch {
	case (s.compareIPAMD == "") != (s.comparePlugin == ""):
		return fmt.Errorf("-compare-ipamd %q and -compare-plugin %q: give both or neither", s.compareIPAMD, s.comparePlugin)
	case !s.enabled && !s.figures:
		return errors.New("-figures=false and -sidebyside=false: nothing to measure")
	}
	return nil
}

// compareBinaries returns the supplied agent, or nil.
func (s *sbsOptions) compareBinaries() (*localvpc.AgentBinaries, error) {
	if s.compareIPAMD == "" {
		return nil, nil
	}
	ipamd, err := filepath.Abs(s.compareIPAMD)
	if err != nil {
		return nil, fmt.Errorf("-compare-ipamd: %w", err)
	}
	plugin, err := filepath.Abs(s.comparePlugin)
	if err != nil {
		return nil, fmt.Errorf("-compare-plugin: %w", err)
	}
	b := localvpc.AgentBinaries{IPAMD: ipamd, Plugin: plugin}
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("compare binaries: %w", err)
	}
	return &b, nil
}

// benchmarkAll measures figures 1-9 (unless -figures=false) and then the
// side-by-side scenario, whose figure joins the results. The returned
// function prints the side-by-side table with its ratio column.
func benchmarkAll(ctx context.Context, o options, log *slog.Logger, progress io.Writer) (*bench.Results, func(io.Writer), error) {
	noTable := func(io.Writer) {}
	var (
		res *bench.Results
		err error
	)
	figures, scenario := o.sbs.figures && o.only != sbsFigureID, o.sbs.enabled && (o.only == 0 || o.only == sbsFigureID)
	if figures {
		res, err = benchmark(ctx, o, log, progress)
		if res == nil || err != nil || !scenario {
			return res, noTable, err
		}
	} else {
		res = &bench.Results{Schema: bench.Schema, Started: time.Now().UTC(), Quick: o.quick, Host: host()}
		res.Host.Version = version.Version
	}
	start := time.Now()
	cfg := defaultSBSConfig(o.quick)
	cfg.Log, cfg.Progress, cfg.NodeLogs = log, progress, o.nodeLogs
	if cfg.Compare, err = o.sbs.compareBinaries(); err == nil {
		cfg.Ours, err = localvpc.ProjectBinaries(o.bin)
	}
	var runs []sbsRun
	if err == nil {
		if cfg.Compare == nil {
			fmt.Fprintln(progress, "side by side: no -compare-ipamd/-compare-plugin (COMPARE_IPAMD/COMPARE_PLUGIN) given: running ours alone")
		} else {
			// The table's title names the compare agent, also when only
			// the scenario ran (no figure phase set it).
			res.CompareAgent = cfg.Compare.IPAMD + " + " + cfg.Compare.Plugin
		}
		runs, err = sideBySide(ctx, cfg)
	}
	res.Figures = append(res.Figures, sbsFigure(runs, cfg, err))
	res.ElapsedSeconds += time.Since(start).Seconds()
	res.Host.Load[1] = loadAverage()
	table := func(w io.Writer) {
		if len(runs) > 0 {
			_ = writeSBSTable(w, runs, cfg)
		}
	}
	if ctx.Err() != nil {
		return res, table, ctx.Err()
	}
	return res, table, nil // a failed scenario is a figure with an error
}
