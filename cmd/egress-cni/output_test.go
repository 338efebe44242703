package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/output/*.golden from the plugin's output")

// passConf is the egress entry of an IPv4 cluster's conflist (egress off)
// with prevResult as libcni passes it; %s are cniVersion and prevResult.
const passConf = `{"cniVersion":"%s","name":"aws-cni","type":"egress-cni","mtu":"9001","enabled":"false","randomizeSNAT":"prng","nodeIP":"","ipam":{"type":"host-local","ranges":[[{"subnet":"fd00::ac:00/118"}]],"routes":[{"dst":"::/0"}],"dataDir":"%s"},"pluginLogFile":"%s","pluginLogLevel":"DEBUG"%s}`

// Result shapes aws-cni hands on (docs/compatibility.md): an IPv4 pod, an
// IPv6 pod, with and without gateway, routes and DNS.
var prevResults = map[string]string{
	"v4":   `{"cniVersion":"%s","interfaces":[{"name":"eni1234567890a","mac":"aa:bb:cc:dd:ee:ff"},{"name":"eth0","mac":"11:22:33:44:55:66","sandbox":"/var/run/netns/cni-1"},{"name":"dummy1234567890","mac":"0","sandbox":"0"}],"ips":[{"%s":"4","interface":1,"address":"10.0.1.5/32"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{}}`,
	"v6":   `{"cniVersion":"%s","interfaces":[{"name":"eni1234567890a","mac":"aa:bb:cc:dd:ee:ff"},{"name":"eth0","mac":"11:22:33:44:55:66","sandbox":"/var/run/netns/cni-1"}],"ips":[{"%s":"6","interface":1,"address":"2001:db8::5/128","gateway":"fe80::1"}],"routes":[{"dst":"::/0","gw":"fe80::1"}],"dns":{"nameservers":["fd00::a"],"domain":"cluster.local","search":["svc.cluster.local"],"options":["ndots:5"]}}`,
	"bare": `{"cniVersion":"%s","ips":[{"%s":"4","address":"10.0.1.6/32"}]}`,
}

type outputCase struct {
	name  string
	env   map[string]string
	stdin string
}

func outputCases(dataDir, logFile string) []outputCase {
	env := func(cmd string) map[string]string {
		return map[string]string{"CNI_COMMAND": cmd, "CNI_CONTAINERID": "abc123", "CNI_NETNS": "/var/run/netns/cni-1", "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin"}
	}
	conf := func(v, prev string) string { return fmt.Sprintf(passConf, v, dataDir, logFile, prev) }
	var cs []outputCase
	for _, v := range []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		verKey := "version"
		if strings.HasPrefix(v, "1.") {
			verKey = "x-no-version" // 1.x results have no per-IP version
		}
		for _, shape := range []string{"v4", "v6", "bare"} {
			prev := fmt.Sprintf(prevResults[shape], v, verKey)
			cs = append(cs, outputCase{"add-" + v + "-" + shape, env("ADD"), conf(v, `,"prevResult":`+prev)})
		}
		// prevResult of an older version than the netconf's.
		cs = append(cs, outputCase{"add-" + v + "-prev040", env("ADD"), conf(v, `,"prevResult":`+fmt.Sprintf(prevResults["v4"], "0.4.0", "version"))})
		cs = append(cs, outputCase{"del-" + v, env("DEL"), conf(v, "")})
		cs = append(cs, outputCase{"check-" + v, env("CHECK"), conf(v, `,"prevResult":`+fmt.Sprintf(prevResults["v4"], v, verKey))})
	}
	cs = append(cs,
		outputCase{"version", map[string]string{"CNI_COMMAND": "VERSION"}, `{"cniVersion":"1.1.0"}`},
		outputCase{"status", env("STATUS"), conf("1.1.0", "")},
		outputCase{"gc-disabled", env("GC"), conf("1.1.0", `,"cni.dev/valid-attachments":[]`)},
		outputCase{"add-no-prevresult", env("ADD"), conf("0.4.0", "")},
		outputCase{"add-bad-prevresult", env("ADD"), conf("0.4.0", `,"prevResult":{"cniVersion":"0.4.0","ips":[{"version":"4","address":"nope"}]}`)},
		outputCase{"add-bad-json", env("ADD"), `{"cniVersion":`},
		outputCase{"add-bad-conf", env("ADD"), strings.Replace(conf("0.4.0", ""), `"enabled":"false"`, `"enabled":"yes"`, 1)},
		outputCase{"add-no-name", env("ADD"), strings.Replace(conf("0.4.0", ""), `"name":"aws-cni",`, "", 1)},
		outputCase{"add-unsupported-version", env("ADD"), conf("0.9.0", `,"prevResult":`+fmt.Sprintf(prevResults["v4"], "0.4.0", "version"))},
		outputCase{"check-old-version", env("CHECK"), conf("0.3.1", "")},
		// The node's own namespace: one error, not the passed-on result
		// followed by the CNI library's error.
		outputCase{"add-own-netns", map[string]string{"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "abc123", "CNI_NETNS": "/proc/self/ns/net", "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin"},
			conf("1.0.0", `,"prevResult":`+fmt.Sprintf(prevResults["v4"], "1.0.0", "x-no-version"))},
		outputCase{"add-bad-containerid", map[string]string{"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "a/b", "CNI_NETNS": "/x", "CNI_IFNAME": "eth0", "CNI_PATH": "/p"}, conf("0.4.0", "")},
		outputCase{"add-missing-env", map[string]string{"CNI_COMMAND": "ADD"}, conf("0.4.0", "")},
		outputCase{"unknown-command", map[string]string{"CNI_COMMAND": "FROB", "CNI_PATH": "/p"}, conf("0.4.0", "")},
	)
	return cs
}

// TestOutputUnchanged: what the plugin prints on stdout, and its exit
// status, for the pass-through and error cases stay byte for byte what
// testdata/output holds (the output of the skel-based plugin before
// issue 15's rework). Paths vary per run, so the data dir and log file are
// fixed names under a temp dir that never appear in the output.
func TestOutputUnchanged(t *testing.T) {
	bin := filepath.Join(binDir, "egress-cni")
	tmp := t.TempDir()
	dataDir, logFile := filepath.Join(tmp, "data"), filepath.Join(tmp, "egress.log")
	for _, tc := range outputCases(dataDir, logFile) {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin)
			for k, v := range tc.env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			cmd.Stdin = strings.NewReader(tc.stdin)
			var stdout bytes.Buffer
			cmd.Stdout = &stdout
			code := 0
			if err := cmd.Run(); err != nil {
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					t.Fatal(err)
				}
				code = ee.ExitCode()
			}
			got := fmt.Sprintf("exit %d\n%s", code, stdout.Bytes())
			if strings.Contains(got, tmp) {
				t.Fatalf("output names the temp dir; it would not be stable:\n%s", got)
			}
			golden := filepath.Join("testdata", "output", tc.name+".golden")
			if *updateGolden {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("output changed\n--- got\n%s\n--- want\n%s", got, want)
			}
		})
	}
}
