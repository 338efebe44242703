// Command max-pods prints the number of pods a node of an instance type can
// run with vpc-cni, in secondary-IP mode, with prefix delegation, with custom
// networking and with both (docs/compatibility.md, "Max pods"). Limits come
// from EC2 DescribeInstanceTypes (or vpcsim via -ec2-endpoint), or from
// -enis/-ipv4-per-eni.
//
//	max-pods m5.large c5.4xlarge
//	max-pods -mode custom-networking -region us-west-2 m5.large   # just the number, for kubelet --max-pods
//	max-pods --instance-type m5.large --cni-version 1.23.1 --cni-prefix-delegation-enabled   # the EKS calculator's flags
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, newEC2Source)
	stop()
	os.Exit(code)
}

// instanceTypes is what max-pods needs from EC2 (pkg/awsutils.EC2 has it).
type instanceTypes interface {
	InstanceType(ctx context.Context, instanceType string) (awsutils.InstanceTypeInfo, error)
}

type sourceConfig struct {
	Region, Endpoint string
	IMDSEndpoint     string                      // --instance-type-from-imds only
	Credentials      *awsutils.StaticCredentials // tests only
}

func newEC2Source(ctx context.Context, sc sourceConfig) (instanceTypes, error) {
	return awsutils.NewEC2(ctx, awsutils.Config{Region: sc.Region, EC2Endpoint: sc.Endpoint, Credentials: sc.Credentials}, nil)
}

var modes = []Mode{{}, {PrefixDelegation: true}, {CustomNetworking: true}, {PrefixDelegation: true, CustomNetworking: true}}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, newSource func(context.Context, sourceConfig) (instanceTypes, error)) int {
	fs := flag.NewFlagSet("max-pods", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		sc       sourceConfig
		enis     = fs.Int("enis", 0, "ENIs of the default network card (with -ipv4-per-eni: skip EC2)")
		ipv4     = fs.Int("ipv4-per-eni", 0, "IPv4 addresses per ENI, primary included")
		vcpus    = fs.Int("vcpus", 0, "vCPUs, for the automatic prefix-delegation cap (EC2 lookups report them; needed with -enis)")
		capFlag  = fs.String("cap", "auto", `"auto": prefix delegation capped at 110 below 30 vCPUs, else 250; "none"; or a number capping every mode`)
		modeFlag = fs.String("mode", "all", "all, or one of secondary-ip, prefix-delegation, custom-networking, custom-networking+prefix-delegation (prints only the number)")
	)
	var calc calcFlags
	calc.register(fs)
	fs.StringVar(&sc.Region, "region", os.Getenv("AWS_REGION"), "EC2 region")
	fs.StringVar(&sc.Endpoint, "ec2-endpoint", "", "EC2 endpoint URL, e.g. vpcsim's")
	fs.StringVar(&sc.IMDSEndpoint, "imds-endpoint", "", "instance metadata endpoint URL for --instance-type-from-imds (default: the SDK's, or AWS_EC2_METADATA_SERVICE_ENDPOINT)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: max-pods [flags] <instance-type>...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	types := fs.Args()
	if calc.instanceType != "" {
		types = append([]string{calc.instanceType}, types...)
	}
	if calc.typeFromIMDS && len(types) > 0 {
		fmt.Fprintf(stderr, "max-pods: --instance-type-from-imds and the instance type %q both name the type; give one\n", types[0])
		return 2
	}
	if len(types) == 0 && !calc.typeFromIMDS {
		fs.Usage()
		return 2
	}
	if calc.showMaxAllowed {
		if flagGiven(fs, "cap") {
			fmt.Fprintf(stderr, "max-pods: -cap %q and --show-max-allowed both choose the cap; give one\n", *capFlag)
			return 2
		}
		*capFlag = "none"
	}
	c, err := parseCap(*capFlag)
	if err != nil {
		fmt.Fprintf(stderr, "max-pods: %v\n", err)
		return 2
	}
	if err := calc.check(); err != nil {
		fmt.Fprintf(stderr, "max-pods: %v\n", err)
		return 2
	}
	selected := modes
	if calc.set() {
		if *modeFlag != "all" {
			fmt.Fprintf(stderr, "max-pods: -mode %q and the EKS calculator's flags both choose the mode; give one\n", *modeFlag)
			return 2
		}
		m, _ := calc.mode() // checked above
		selected = []Mode{m}
	}
	if *modeFlag != "all" {
		selected = nil
		for _, m := range modes {
			if m.String() == *modeFlag {
				selected = []Mode{m}
			}
		}
		if selected == nil {
			fmt.Fprintf(stderr, "max-pods: -mode %q: want all, secondary-ip, prefix-delegation, custom-networking or custom-networking+prefix-delegation\n", *modeFlag)
			return 2
		}
	}
	if err := checkLimitFlags(*enis, *ipv4, *vcpus); err != nil {
		fmt.Fprintf(stderr, "max-pods: %v\n", err)
		return 2
	}
	manual := *enis > 0
	if calc.typeFromIMDS {
		typ, region, err := typeFromIMDS(ctx, sc.IMDSEndpoint, !manual && sc.Region == "")
		if err != nil {
			fmt.Fprintf(stderr, "max-pods: --instance-type-from-imds: %v\n", err)
			return 1
		}
		types = []string{typ}
		if sc.Region == "" {
			sc.Region = region
		}
	}
	if manual && len(types) != 1 {
		fmt.Fprintln(stderr, "max-pods: -enis/-ipv4-per-eni describe one instance type")
		return 2
	}

	if !manual && sc.Region == "" {
		fmt.Fprintln(stderr, "max-pods: no EC2 region: pass -region or set AWS_REGION (or give -enis and -ipv4-per-eni)")
		return 2
	}
	var src instanceTypes
	if !manual {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if src, err = newSource(ctx, sc); err != nil {
			fmt.Fprintf(stderr, "max-pods: EC2 client: %v\n", err)
			return 1
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if len(selected) > 1 {
		fmt.Fprintln(tw, "INSTANCE TYPE\tMODE\tMAX PODS")
	}
	for _, typ := range types {
		l := Limits{ENIs: *enis, IPv4PerENI: *ipv4, VCPUs: *vcpus}
		prefixes := true // -enis/-ipv4-per-eni: the caller says what the node runs
		if !manual {
			info, err := src.InstanceType(ctx, typ)
			if err != nil {
				fmt.Fprintf(stderr, "max-pods: %v\n", err)
				return 1
			}
			l.ENIs, l.IPv4PerENI = info.MaxENIs, info.IPv4PerENI
			prefixes = info.PrefixDelegationSupported()
			if l.VCPUs == 0 {
				l.VCPUs = info.VCPUs
			}
		}
		l.ENIs = capENIs(l.ENIs, calc.maxENI)
		for _, m := range selected {
			n, err := MaxPods(l, m.onType(prefixes), c)
			if err != nil {
				fmt.Fprintf(stderr, "max-pods: %s %s: %v\n", typ, m, err)
				return 1
			}
			if len(selected) == 1 {
				fmt.Fprintf(tw, "%d\n", n)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\n", typ, m, n)
		}
	}
	if err := tw.Flush(); err != nil {
		fmt.Fprintf(stderr, "max-pods: %v\n", err)
		return 1
	}
	return 0
}

// flagGiven reports whether the command line set the flag name.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

func parseCap(s string) (Cap, error) {
	switch s {
	case "auto":
		return Cap{Auto: true}, nil
	case "none":
		return Cap{}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return Cap{}, errors.New(`-cap ` + strconv.Quote(s) + `: want "auto", "none" or a positive number`)
	}
	return Cap{Fixed: n}, nil
}

// checkLimitFlags refuses what would otherwise be ignored (a negative value
// fell through to EC2) or reported as an instance limit: -enis and
// -ipv4-per-eni come together, and none of the three is negative.
func checkLimitFlags(enis, ipv4, vcpus int) error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{{"-enis", enis}, {"-ipv4-per-eni", ipv4}, {"-vcpus", vcpus}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s %d: want a positive number", f.name, f.v))
		}
	}
	switch {
	case enis > 0 && ipv4 == 0:
		errs = append(errs, errors.New("-enis needs -ipv4-per-eni"))
	case ipv4 > 0 && enis == 0:
		errs = append(errs, errors.New("-ipv4-per-eni needs -enis"))
	}
	return errors.Join(errs...)
}
