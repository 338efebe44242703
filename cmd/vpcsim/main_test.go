package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpc-cni/vpc-cni/pkg/poll"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/conformance"
)

// binary builds cmd/vpcsim once per test binary run.
func binary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vpcsim")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

type endpoints struct {
	ec2, admin string
	imds       map[string]string
	// later receives "imds <id> <url>" lines printed after ready
	later chan []string
}

// start runs the binary on a scenario, parses its endpoint lines until
// "ready", and SIGTERMs it at the end of the test (checking a clean exit).
func start(t *testing.T, bin, scenario string, extra ...string) endpoints {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-scenario", scenario}, extra...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("vpcsim exit after SIGTERM: %v\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("vpcsim did not stop on SIGTERM")
		}
	})
	ep := endpoints{imds: map[string]string{}, later: make(chan []string, 16)}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 1 && f[0] == "ready":
			// keep reading stdout so later "imds" lines never block the server
			go func() {
				for sc.Scan() {
					if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "imds" {
						select {
						case ep.later <- f:
						default:
						}
					}
				}
				_, _ = io.Copy(io.Discard, out)
				done <- cmd.Wait()
			}()
			return ep
		case len(f) == 2 && f[0] == "ec2":
			ep.ec2 = f[1]
		case len(f) == 2 && f[0] == "admin":
			ep.admin = f[1]
		case len(f) == 3 && f[0] == "imds":
			ep.imds[f[1]] = f[2]
		}
	}
	done <- cmd.Wait()
	t.Fatalf("vpcsim exited before ready: %s", stderr.String())
	return ep
}

func writeScenario(t *testing.T, base string, edit func(*vpcsim.Scenario)) string {
	t.Helper()
	sc, err := vpcsim.LoadScenario(base)
	if err != nil {
		t.Fatal(err)
	}
	edit(&sc)
	b, err := json.Marshal(sc) // JSON is valid YAML
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "scenario.yaml")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const basicScenario = "../../misc/scenarios/basic.yaml"

var basicWorld = conformance.World{InstanceID: "i-00000000000000001", SubnetID: "subnet-00000000000000001", SecurityGroupID: "sg-00000000000000001"}

func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the vpcsim binary")
	}
	bin := binary(t)

	t.Run("ENI life cycle and IMDS", func(t *testing.T) {
		ep := start(t, bin, basicScenario)
		c := conformance.NewEC2(ep.ec2)
		for _, mode := range []string{"secondary", "prefix", "ipv6"} {
			t.Run(mode, func(t *testing.T) { conformance.ENILifecycle(t, c, basicWorld, mode) })
		}
		md := conformance.NewIMDS(ep.imds[basicWorld.InstanceID])
		doc, err := md.GetInstanceIdentityDocument(conformance.Ctx(t), &imds.GetInstanceIdentityDocumentInput{})
		if err != nil || doc.InstanceID != basicWorld.InstanceID || doc.Region != "us-west-2" {
			t.Fatalf("identity document: %+v %v", doc, err)
		}
		// an instance launched at runtime gets its own IMDS endpoint
		resp, err := http.Post(ep.admin+"/instances", "application/json", strings.NewReader(`{"type":"m6i.large","subnet":"subnet-00000000000000002"}`))
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /instances: %v %v", resp, err)
		}
		var v vpcsim.InstanceView
		_ = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		select {
		case f := <-ep.later:
			if f[1] != v.ID {
				t.Fatalf("imds line for %s, launched %s", f[1], v.ID)
			}
			got := read(t, conformance.NewIMDS(f[2]), "instance-type")
			if got != "m6i.large" {
				t.Fatalf("new instance's IMDS: %q", got)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no imds line for the launched instance")
		}
		resp, err = http.Get(ep.admin + "/stats")
		if err != nil {
			t.Fatal(err)
		}
		var st vpcsim.Stats
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil || st.Calls["CreateNetworkInterface"] != 3 {
			t.Fatalf("admin stats: %+v %v", st, err)
		}
	})

	t.Run("limits, throttling and recovery", func(t *testing.T) {
		p := writeScenario(t, basicScenario, func(s *vpcsim.Scenario) {
			// A token every 10 s: the four creates below must all land
			// before one comes back, and this binary runs on the real clock
			// of a possibly loaded machine (2 s was not always enough).
			s.Faults.Throttle = vpcsim.Throttle{Enabled: true, Buckets: map[string]vpcsim.Bucket{"eniCreateDelete": {Size: 3, Refill: 0.1}}}
		})
		ep := start(t, bin, p)
		c := conformance.NewEC2(ep.ec2)
		create := func() (string, error) {
			out, err := c.CreateNetworkInterface(conformance.Ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(basicWorld.SubnetID)})
			if err != nil {
				return "", err
			}
			return aws.ToString(out.NetworkInterface.NetworkInterfaceId), nil
		}
		var ids []string
		for i := 0; i < 3; i++ {
			id, err := create()
			if err != nil {
				t.Fatalf("create %d within the bucket: %v", i+1, err)
			}
			ids = append(ids, id)
		}
		_, err := create()
		conformance.WantCode(t, err, "RequestLimitExceeded")
		// refill is 0.1/s: about 10 s after the first create a call
		// succeeds again
		err = poll.Until(conformance.Ctx(t), 30*time.Second, func() error {
			_, err := create()
			if err != nil {
				conformance.WantCode(t, err, "RequestLimitExceeded")
			}
			return err
		})
		if err != nil {
			t.Fatalf("bucket never refilled: %v", err)
		}
		for dev, id := range ids[:2] {
			if _, err := c.AttachNetworkInterface(conformance.Ctx(t), &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: aws.String(id), InstanceId: aws.String(basicWorld.InstanceID), DeviceIndex: aws.Int32(int32(dev + 1))}); err != nil {
				t.Fatal(err)
			}
		}
		_, err = c.AttachNetworkInterface(conformance.Ctx(t), &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: aws.String(ids[2]), InstanceId: aws.String(basicWorld.InstanceID), DeviceIndex: aws.Int32(3)})
		conformance.WantCode(t, err, "AttachmentLimitExceeded")
	})

	t.Run("IMDS lag and IMDSv2", func(t *testing.T) {
		p := writeScenario(t, basicScenario, func(s *vpcsim.Scenario) {
			// Far longer than the test: the lag, not the test's speed,
			// keeps the address out until the test lifts it.
			s.Faults.IMDSLag = vpcsim.Duration(time.Hour)
			s.Instances[0].IMDSv1Disabled = true
		})
		ep := start(t, bin, p)
		base := ep.imds[basicWorld.InstanceID]
		resp, err := http.Get(base + "/latest/meta-data/local-ipv4")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("IMDSv1 with v1 disabled: %d, want 401", resp.StatusCode)
		}
		c, md := conformance.NewEC2(ep.ec2), conformance.NewIMDS(base)
		mac := read(t, md, "mac")
		eni := read(t, md, "network/interfaces/macs/"+mac+"/interface-id")
		out, err := c.AssignPrivateIpAddresses(conformance.Ctx(t), &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eni), SecondaryPrivateIpAddressCount: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		ip := aws.ToString(out.AssignedPrivateIpAddresses[0].PrivateIpAddress)
		path := "network/interfaces/macs/" + mac + "/local-ipv4s"
		if strings.Contains(read(t, md, path), ip) {
			t.Fatalf("%s visible in IMDS despite the scenario's 1h lag", ip)
		}
		// Without the lag IMDS shows the instance as it is now.
		resp, err = http.Post(ep.admin+"/faults", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /faults: %d", resp.StatusCode)
		}
		err = poll.Until(conformance.Ctx(t), 30*time.Second, func() error {
			if !strings.Contains(read(t, md, path), ip) {
				return fmt.Errorf("%s not in IMDS yet", ip)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s never appeared in IMDS: %v", ip, err)
		}
	})

	t.Run("help and bad input", func(t *testing.T) {
		out, err := exec.Command(bin, "-help").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Scenario file") || !strings.Contains(string(out), "-imds-addr") {
			t.Fatalf("-help: %v\n%s", err, out)
		}
		bad := filepath.Join(t.TempDir(), "bad.yaml")
		_ = os.WriteFile(bad, []byte("region: us-west-2\nvpcz: []\n"), 0o644)
		out, err = exec.Command(bin, "-scenario", bad).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "vpcz") {
			t.Fatalf("unknown key must fail naming it: %v\n%s", err, out)
		}
	})
}

func read(t *testing.T, c *imds.Client, path string) string {
	t.Helper()
	out, err := c.GetMetadata(conformance.Ctx(t), &imds.GetMetadataInput{Path: path})
	if err != nil {
		t.Fatalf("imds %s: %v", path, err)
	}
	defer out.Content.Close()
	b, _ := io.ReadAll(out.Content)
	return string(b)
}

// A bad or busy listen address fails naming its flag; a malformed one is
// refused before anything listens, so no endpoint line is printed.
func TestListenAddressErrorsNameTheFlag(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	scenario := filepath.Join("..", "..", "misc", "scenarios", "two-node.yaml")
	for _, tc := range []struct {
		flag, addr string
		code       int
		quiet      bool // nothing on stdout
	}{
		{"-imds-addr", "127.0.0.1:x", 2, true},
		{"-admin-addr", "localhost", 2, true},
		{"-ec2-addr", busy.Addr().String(), 1, true},
		{"-admin-addr", busy.Addr().String(), 1, false},
		{"-imds-shared-addr", busy.Addr().String(), 1, false},
	} {
		var stdout, stderr bytes.Buffer
		code := run([]string{"-scenario", scenario, tc.flag, tc.addr}, &stdout, &stderr)
		if code != tc.code {
			t.Errorf("%s %s: exit %d, want %d (stderr %q)", tc.flag, tc.addr, code, tc.code, stderr.String())
		}
		if want := tc.flag + " "; !strings.Contains(stderr.String(), want) || !strings.Contains(stderr.String(), tc.addr) {
			t.Errorf("%s %s: stderr %q, want it to name the flag and the address", tc.flag, tc.addr, stderr.String())
		}
		if strings.Contains(stdout.String(), "ready") || (tc.quiet && stdout.Len() > 0) {
			t.Errorf("%s %s: stdout %q after a failed start", tc.flag, tc.addr, stdout.String())
		}
	}
}

// -help lists every admin route a user can call.
func TestHelpListsEveryAdminRoute(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("-help: exit %d", code)
	}
	for _, route := range []string{"/stats", "/state", "/faults", "/instances", "/sgdrops"} {
		if !strings.Contains(stderr.String(), route) {
			t.Errorf("-help does not mention %s", route)
		}
	}
}

// A -scenario that cannot be read or parsed is bad input: exit 2 naming
// the flag and the file, like a bad listen address; one vpcsim cannot
// build names the flag too. Before, all three were logged as "vpcsim
// failed" with exit 1, without the flag.
func TestScenarioErrorsNameTheFlag(t *testing.T) {
	dir := t.TempDir()
	badYAML := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badYAML, []byte("vpcs: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noSubnet := filepath.Join(dir, "no-subnet.yaml")
	if err := os.WriteFile(noSubnet, []byte("instances:\n- id: i-00000000000000001\n  type: m5.large\n  subnet: subnet-missing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		scenario string
		code     int
	}{
		{filepath.Join(dir, "missing.yaml"), 2},
		{badYAML, 2},
		{noSubnet, 1},
	} {
		var stdout, stderr bytes.Buffer
		code := run([]string{"-scenario", tc.scenario}, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), "-scenario") || !strings.Contains(stderr.String(), tc.scenario) {
			t.Errorf("-scenario %s: exit %d, stderr %q; want exit %d naming -scenario and the file", tc.scenario, code, stderr.String(), tc.code)
		}
		if stdout.Len() > 0 {
			t.Errorf("-scenario %s: stdout %q after a failed start", tc.scenario, stdout.String())
		}
	}
}
