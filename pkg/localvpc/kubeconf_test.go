package localvpc

import (
	"net/netip"
	"strings"
	"testing"
)

func TestKubeConfigValidateNamesEveryBadField(t *testing.T) {
	c := KubeConfig{Kubelet: "/nonexistent/kubelet", APIServer: "127.0.0.1", Images: []string{"/nonexistent/image.tar"}}
	err := c.validate()
	if err == nil {
		t.Fatal("validate accepted an empty config")
	}
	for _, want := range []string{"KubeConfig.Kubelet", "KubeConfig.APIServer", "KubeConfig.Token", "KubeConfig.ServiceIP", "KubeConfig.PauseImage", "KubeConfig.Images"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	ok := KubeConfig{Kubelet: "kubelet", APIServer: "127.0.0.1:6443", Token: "t", ServiceIP: netip.MustParseAddr("172.20.0.1"), PauseImage: "localhost/pause:x"}
	if err := ok.validate(); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
	if ok.Containerd != "containerd" || ok.Ctr != "ctr" {
		t.Errorf("defaults not applied: %+v", ok)
	}
}

func TestKubeNodeNameIsEC2PrivateDNSName(t *testing.T) {
	if got := KubeNodeName(netip.MustParseAddr("10.0.3.17"), "us-west-2"); got != "ip-10-0-3-17.us-west-2.compute.internal" {
		t.Errorf("got %q", got)
	}
}

// The rendered kubelet config keeps kubelet inside the node: nothing that
// would write the machine's kernel settings or iptables, cgroups under the
// run's root.
func TestKubeletConfigStaysInsideTheNode(t *testing.T) {
	c := kubeletConfig(netip.MustParseAddr("10.0.3.17"), "/vpcsim-abc-i-1")
	for _, want := range []string{"address: 10.0.3.17", "cgroupRoot: /vpcsim-abc-i-1", "makeIPTablesUtilChains: false", "protectKernelDefaults: false", "healthzBindAddress: 127.0.0.1"} {
		if !strings.Contains(c, want) {
			t.Errorf("kubelet config lacks %q:\n%s", want, c)
		}
	}
	if d := cgroupDirs("/sys"); d != nil {
		t.Errorf("cgroupDirs walked a cgroup it did not name: %v", d)
	}
}
