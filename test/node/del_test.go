package node

import (
	"bufio"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
)

// logLine is the part of ipamd's and the plugin's JSON log lines the DEL
// checks read.
type logLine struct {
	Msg   string `json:"msg"`
	Level string `json:"level"`
	Pod   string `json:"pod"`
	Err   string `json:"err"`
	Error string `json:"error"`
}

// readLog returns the JSON lines of a node's log file about pod.
func (kn *kubeNode) readLog(name, pod string) []logLine {
	kn.t.Helper()
	f, err := os.Open(kn.k.HostPath(localvpc.NodeLogDir + "/" + name))
	if err != nil {
		kn.t.Fatalf("node %s: %v", kn.k.Name, err)
	}
	defer f.Close()
	var out []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Pod == pod {
			out = append(out, l)
		}
	}
	return out
}

// delsOf splits ipamd's DelNetwork lines about pod into successes (the
// address released, or "unknown pod" for a repeated DEL) and failures.
func (kn *kubeNode) delsOf(pod string) (ok, failed []string) {
	for _, l := range kn.readLog("ipamd.log", pod) {
		switch {
		case l.Msg == "DelNetwork" || l.Msg == "DelNetwork: unknown pod":
			ok = append(ok, l.Msg)
		case strings.HasPrefix(l.Msg, "DelNetwork"):
			failed = append(failed, l.Msg+": "+l.Err)
		}
	}
	return ok, failed
}

// pluginDelsOf counts the plugin's DEL outcomes for pod: addresses
// released, nothing to release, and DELs that never reached ipamd (their
// errors).
func (kn *kubeNode) pluginDelsOf(pod string) (released, empty int, unreached []string) {
	for _, l := range kn.readLog("plugin.log", pod) {
		switch l.Msg {
		case "pod deleted":
			released++
		case "ipamd holds no address for the pod; nothing to release":
			empty++
		case "ipamd unavailable; pod network removed using prevResult":
			unreached = append(unreached, l.Error)
		}
	}
	return released, empty, unreached
}

// assertDels checks that containerd's DELs for a deleted pod all reached
// ipamd and succeeded: the first releases the address, the repeat (kubelet
// stops the sandbox again before removing it) finds nothing to release.
// The plugin's own log must show the same number of successful DELs.
func (kn *kubeNode) assertDels(ctx context.Context, pod string) {
	kn.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var ok, failed []string
	var released, empty int
	var unreached []string
	// The plugin logs a DEL after ipamd answered it, so the wait covers
	// both logs: kubelet's repeated DEL can land just as this reads.
	waitFor(kn.t, ctx, "two DELs of "+pod+" in ipamd's log on "+kn.k.Name+", and the plugin's lines for them", func() (bool, error) {
		ok, failed = kn.delsOf(pod)
		released, empty, unreached = kn.pluginDelsOf(pod)
		return (len(ok) >= 2 && released+empty+len(unreached) >= len(ok)) || len(failed) > 0, nil
	})
	if len(failed) > 0 {
		kn.t.Errorf("ipamd on %s: failed DEL of %s: %v", kn.k.Name, pod, failed)
	}
	if ok[0] != "DelNetwork" {
		kn.t.Errorf("ipamd on %s: first DEL of %s released nothing: %v", kn.k.Name, pod, ok)
	}
	for _, e := range unreached {
		kn.t.Errorf("plugin on %s: DEL of %s did not reach ipamd: %s", kn.k.Name, pod, e)
	}
	if released != 1 || released+empty != len(ok) {
		kn.t.Errorf("plugin on %s: %d DELs of %s released, %d found nothing; ipamd logged %v", kn.k.Name, released, pod, empty, ok)
	}
	kn.t.Logf("DEL of %s on %s: ipamd logged %q; the plugin logged %d release + %d nothing-to-release, all successful",
		pod, kn.k.Name, ok, released, empty)
}

// waitFreed waits until pod is gone from the API server and its address
// from ipamd's checkpoint.
func (kn *kubeNode) waitFreed(ctx context.Context, pod string, ip netip.Addr) {
	kn.t.Helper()
	waitFor(kn.t, ctx, "pod "+pod+" gone and "+ip.String()+" free in ipamd on "+kn.k.Name, func() (bool, error) {
		_, err := kn.cs.CoreV1().Pods("default").Get(ctx, pod, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return false, nil
		}
		cp, err := kn.k.Checkpoint()
		if err != nil {
			return false, err
		}
		for _, held := range cp {
			if held == ip {
				return false, nil
			}
		}
		return true, nil
	})
}

// logCounts logs how many addresses vpcsim has assigned to the node's ENIs
// and how many of them ipamd has given to pods.
func (kn *kubeNode) logCounts(when string) {
	kn.t.Helper()
	addrs, prefixes := kn.eniAddrs()
	cp, err := kn.k.Checkpoint()
	if err != nil {
		kn.t.Fatal(err)
	}
	kn.t.Logf("%s: vpcsim holds %d secondary addresses and %d prefixes on %s's ENIs; ipamd gives %d to pods",
		when, len(addrs), len(prefixes), kn.k.Name, len(cp))
}
