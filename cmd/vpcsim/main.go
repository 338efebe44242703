// Command vpcsim serves a simulated EC2 API and per-instance metadata
// services (IMDS) for a scenario, so the VPC CNI can run without AWS.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/vpc-cni/vpc-cni/internal/earlysignal"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

const usageText = `Usage: vpcsim -scenario FILE [flags]

vpcsim serves a local EC2 Query API endpoint and one instance-metadata (IMDS)
endpoint per instance, backed by the VPC described in the scenario file. The
unmodified AWS SDK works against it: point the EC2 client at the "ec2" URL
(AWS_ENDPOINT_URL_EC2) and the IMDS client at an "imds" URL
(AWS_EC2_METADATA_SERVICE_ENDPOINT). Any credentials are accepted.

On start it prints one line per endpoint on stdout, then "ready":

  ec2 http://127.0.0.1:PORT
  imds i-00000000000000001 http://127.0.0.1:PORT
  imds-shared http://127.0.0.1:PORT     (only with -imds-shared-addr)
  admin http://127.0.0.1:PORT
  ready

Instances launched later (RunInstances or POST /instances) get an IMDS
endpoint too, announced with an "imds" line. SIGINT/SIGTERM stop it cleanly.

Admin API (JSON): GET /stats, GET /state, GET|PUT /faults,
POST /instances (InstanceSpec), GET|DELETE /instances/{id}, GET /sgdrops
(packets security groups dropped; 404 here: only a data plane such as
localvpc's enforces security groups).

Flags:
`

const scenarioText = `
Scenario file (YAML; durations like "50ms"; unknown keys are errors):

  region: us-west-2                  # required
  accountId: "123456789012"
  availabilityZones: [us-west-2a, us-west-2b]
  publicIpv4Pool: 198.51.100.0/24    # source of public IPs (mapPublicIp)
  denyActions: [CreateTags]          # answer UnauthorizedOperation
  vpcs:
  - id: vpc-00000000000000001
    cidr: 10.0.0.0/16
    secondaryCidrs: [100.64.0.0/16]
    ipv6Cidr: 2600:1f14:abc:de00::/56
    subnets:
    - {id: subnet-0000000000000000a, az: us-west-2a, cidr: 10.0.0.0/20, ipv6Cidr: "2600:1f14:abc:de00::/64",
       mapPublicIp: true, tags: {kubernetes.io/role/cni: "1"}}
    securityGroups:                  # no rules: all from the VPC in, all out
    - {id: sg-00000000000000001, name: default}
    - {id: sg-00000000000000002, name: db, ingress: [{protocol: tcp, fromPort: 5432,
       toPort: 5432, group: sg-00000000000000001}], egress: [{protocol: "-1", cidr: 0.0.0.0/0}]}
  instances:
  - {id: i-00000000000000001, type: m5.large, subnet: subnet-0000000000000000a,
     securityGroups: [sg-00000000000000001], privateIp: 10.0.0.10, imdsV1Disabled: true,
     imdsHopLimit: 2}                # IMDSv2 token hops, 1-64 (default 1; EKS node groups: 2)
  networkInterfaces:                 # pre-existing ENIs (trunk, no_manage, ...)
  - {subnet: subnet-0000000000000000a, interfaceType: trunk, attachTo: i-00000000000000001,
     deviceIndex: 1, secondaryIpCount: 2, tags: {node.k8s.amazonaws.com/no_manage: "true"}}
  faults:
    latency: {"*": 20ms, AttachNetworkInterface: 700ms}
    attachDelay: 2s                  # attaching → attached
    detachDelay: 1s                  # detaching → available
    imdsLag: 3s                      # IMDS shows the instance as it was 3s ago
    errors: [{action: AssignPrivateIpAddresses, code: InsufficientFreeAddressesInSubnet, rate: 0.1, count: 5}]
    throttle:
      enabled: true                  # EC2's per-account token buckets
      buckets: {ipAssign: {size: 100, refill: 5}}
    seed: 1                          # reproducible error injection

Bucket classes (size/refill per second): describe 100/20, describeUnfiltered
50/10, mutating 50/5, eniCreateDelete 100/5, ipAssign 100/5, createTags 100/10,
runInstances 5/2.
Instance types: see vpcsim.InstanceTypes (t2, t3, m4, m5, m6i, m7g, c5, r5
families, *.metal, c6in.32xlarge and p4d.24xlarge with several network cards).
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type config struct {
	scenario   string
	ec2Addr    string
	imdsAddr   string
	sharedIMDS string
	adminAddr  string
	logLevel   string
	sc         vpcsim.Scenario // read from scenario
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("vpcsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.scenario, "scenario", "", "scenario YAML file (required)")
	fs.StringVar(&c.ec2Addr, "ec2-addr", "127.0.0.1:0", "listen address of the EC2 API")
	fs.StringVar(&c.imdsAddr, "imds-addr", "127.0.0.1:0", "listen address of the per-instance IMDS endpoints; port 0 picks a free port per instance, port P gives instance n port P+n")
	fs.StringVar(&c.sharedIMDS, "imds-shared-addr", "", "optional listen address of one IMDS for all instances, chosen by the caller's source address (any address the instance holds)")
	fs.StringVar(&c.adminAddr, "admin-addr", "127.0.0.1:0", "listen address of the admin API (empty disables it)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
		fmt.Fprint(stderr, scenarioText)
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if c.scenario == "" {
		return c, errors.New("-scenario is required (see -help)")
	}
	// Checked before anything listens, so a typo fails without a half
	// set of endpoint lines on stdout.
	for _, a := range []struct{ flag, addr string }{
		{"-ec2-addr", c.ec2Addr}, {"-imds-addr", c.imdsAddr}, {"-imds-shared-addr", c.sharedIMDS}, {"-admin-addr", c.adminAddr},
	} {
		if a.addr == "" && a.flag != "-ec2-addr" && a.flag != "-imds-addr" {
			continue
		}
		if err := checkListenAddr(a.addr); err != nil {
			return c, fmt.Errorf("%s %q: %w", a.flag, a.addr, err)
		}
	}
	sc, err := vpcsim.LoadScenario(c.scenario)
	if err != nil {
		return c, fmt.Errorf("-scenario: %w", err)
	}
	c.sc = sc
	return c, nil
}

// checkListenAddr accepts host:port with a numeric port (host may be empty).
func checkListenAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port: %w", err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "vpcsim:", err)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		fmt.Fprintf(stderr, "vpcsim: -log-level %q: %v\n", cfg.logLevel, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := earlysignal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, log, stdout); err != nil {
		log.Error("vpcsim failed", "err", err)
		return 1
	}
	return 0
}

// servers tracks every listener so shutdown closes them all.
type servers struct {
	mu    sync.Mutex
	out   io.Writer
	log   *slog.Logger
	srvs  []*http.Server
	wg    sync.WaitGroup
	errCh chan error
}

// start serves h on addr (given by flag) and prints line with its URL.
func (s *servers) start(flag, addr string, h http.Handler, line string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s %s: %w", flag, addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.srvs = append(s.srvs, srv)
	fmt.Fprintf(s.out, "%s http://%s\n", line, ln.Addr())
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case s.errCh <- fmt.Errorf("%s: %w", line, err):
			default:
			}
		}
	}()
	return nil
}

func (s *servers) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.mu.Lock()
	srvs := append([]*http.Server(nil), s.srvs...)
	s.mu.Unlock()
	for _, srv := range srvs {
		if err := srv.Shutdown(ctx); err != nil {
			s.log.Warn("shutdown", "err", err)
		}
	}
	s.wg.Wait()
}

// imdsAddrFor gives instance n its IMDS listen address.
func imdsAddrFor(base string, n int) (string, error) {
	host, port, err := net.SplitHostPort(base)
	if err != nil {
		return "", fmt.Errorf("-imds-addr %q: %w", base, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", fmt.Errorf("-imds-addr %q: bad port", base)
	}
	if p == 0 {
		return base, nil
	}
	return net.JoinHostPort(host, strconv.Itoa(p+n)), nil
}

func serve(ctx context.Context, cfg config, log *slog.Logger, stdout io.Writer) error {
	sim, err := vpcsim.New(cfg.sc, vpcsim.WithLogger(log))
	if err != nil {
		return fmt.Errorf("-scenario %s: %w", cfg.scenario, err)
	}
	defer sim.Close()
	s := &servers{out: stdout, log: log, errCh: make(chan error, 1)}
	defer s.shutdown()
	if err := s.start("-ec2-addr", cfg.ec2Addr, sim.EC2Handler(), "ec2"); err != nil {
		return err
	}

	// every instance, present now or launched later, gets its IMDS endpoint
	var (
		mu      sync.Mutex
		started = map[string]bool{}
		n       int
		subErr  error
	)
	cancel := sim.Subscribe(func(ev vpcsim.Event) {
		run, ok := ev.(vpcsim.InstanceRunning)
		if !ok {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if started[run.InstanceID] {
			return
		}
		started[run.InstanceID] = true
		h, err := sim.IMDSHandler(run.InstanceID)
		if err == nil {
			var addr string
			addr, err = imdsAddrFor(cfg.imdsAddr, n)
			if err == nil {
				err = s.start("-imds-addr", addr, h, "imds "+run.InstanceID)
			}
		}
		n++
		if err != nil && subErr == nil {
			subErr = err
		}
		if err != nil {
			log.Error("imds endpoint", "instance", run.InstanceID, "err", err)
		}
	})
	defer cancel()
	mu.Lock()
	err = subErr
	mu.Unlock()
	if err != nil {
		return err
	}
	if cfg.sharedIMDS != "" {
		if err := s.start("-imds-shared-addr", cfg.sharedIMDS, sim.IMDSHandlerByRemoteAddr(), "imds-shared"); err != nil {
			return err
		}
	}
	if cfg.adminAddr != "" {
		if err := s.start("-admin-addr", cfg.adminAddr, sim.AdminHandler(), "admin"); err != nil {
			return err
		}
	}
	s.mu.Lock()
	fmt.Fprintln(stdout, "ready")
	s.mu.Unlock()
	select {
	case <-ctx.Done():
		log.Info("stopping", "reason", context.Cause(ctx))
		return nil
	case err := <-s.errCh:
		return err
	}
}
