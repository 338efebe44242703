package conflist

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func base() Config {
	return Config{
		VethPrefix:         "eni",
		MTU:                9001,
		PodSGEnforcingMode: "strict",
		PluginLogFile:      "/var/log/aws-routed-eni/plugin.log",
		PluginLogLevel:     "DEBUG",
		Egress: &Egress{
			RandomizeSNAT: "prng",
			LogFile:       "/var/log/aws-routed-eni/egress-v6-plugin.log",
		},
	}
}

// The image's template (misc/10-aws.conflist, upstream's placeholders) with
// the values substituted is exactly what Render produces.
func TestRenderMatchesTemplate(t *testing.T) {
	tmpl, err := os.ReadFile(filepath.Join("..", "..", "misc", "10-aws.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		cfg  func(*Config)
		subs map[string]string
	}{
		{
			name: "IPv4 cluster, egress off",
			cfg:  func(*Config) {},
			subs: map[string]string{
				"__EGRESSPLUGINENABLED__": "false", "__NODEIP__": "", "__EGRESSPLUGINIPAMSUBNET__": "fd00::ac:00/118",
				"__EGRESSPLUGINIPAMDST__": "::/0", "__EGRESSPLUGINIPAMDATADIR__": "/run/cni/v4pd/egress-v6-ipam",
				"__EGRESSPLUGINLOGFILE__": "/var/log/aws-routed-eni/egress-v6-plugin.log",
			},
		},
		{
			name: "IPv6 cluster, IPv4 egress",
			cfg: func(c *Config) {
				c.Egress = &Egress{IPv6Cluster: true, Enabled: true, RandomizeSNAT: "none", NodeIP: "10.0.0.10", LogFile: "/var/log/aws-routed-eni/egress-v4-plugin.log"}
				c.MTU, c.VethPrefix, c.PodSGEnforcingMode, c.PluginLogLevel = 1500, "abc", "standard", "INFO"
			},
			subs: map[string]string{
				"__EGRESSPLUGINENABLED__": "true", "__NODEIP__": "10.0.0.10", "__EGRESSPLUGINIPAMSUBNET__": "169.254.172.0/22",
				"__EGRESSPLUGINIPAMDST__": "0.0.0.0/0", "__EGRESSPLUGINIPAMDATADIR__": "/run/cni/v6pd/egress-v4-ipam",
				"__EGRESSPLUGINLOGFILE__": "/var/log/aws-routed-eni/egress-v4-plugin.log",
			},
		},
		{
			name: "log paths with characters JSON may escape as HTML",
			cfg: func(c *Config) {
				c.PluginLogFile, c.Egress.LogFile = "/var/log/aws-routed-eni/a&b.log", "/var/log/<egress>.log"
			},
			subs: map[string]string{
				"__EGRESSPLUGINENABLED__": "false", "__NODEIP__": "", "__EGRESSPLUGINIPAMSUBNET__": "fd00::ac:00/118",
				"__EGRESSPLUGINIPAMDST__": "::/0", "__EGRESSPLUGINIPAMDATADIR__": "/run/cni/v4pd/egress-v6-ipam",
				"__EGRESSPLUGINLOGFILE__": "/var/log/<egress>.log",
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.cfg(&cfg)
			subs := map[string]string{
				"__VETHPREFIX__": cfg.VethPrefix, "__MTU__": itoa(cfg.MTU), "__PODSGENFORCINGMODE__": cfg.PodSGEnforcingMode,
				"__PLUGINLOGFILE__": cfg.PluginLogFile, "__PLUGINLOGLEVEL__": cfg.PluginLogLevel, "__RANDOMIZESNAT__": cfg.Egress.RandomizeSNAT,
			}
			for k, v := range tt.subs {
				subs[k] = v
			}
			want := string(tmpl)
			for k, v := range subs {
				want = strings.ReplaceAll(want, k, v)
			}
			if strings.Contains(want, "__") {
				t.Fatalf("placeholder left in template: %s", want)
			}
			got, err := Render(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, string(got)); diff != "" {
				t.Errorf("Render differs from the substituted template (-want +got):\n%s", diff)
			}
		})
	}
}

// With bandwidth or tuning chained, upstream's entrypoint decodes the
// substituted template into its netconf type and encodes it again. The
// files in testdata are what upstream v1.23.1's entrypoint writes for these
// settings (its algorithm run on misc/10-aws.conflist): keys reordered,
// empty values and portmap's snat left out, fd00::ac:00 written
// fd00::ac:0, no final newline. Render must write the same bytes.
func TestRenderChainedPluginsMatchesUpstreamBytes(t *testing.T) {
	for _, tt := range []struct {
		golden string
		cfg    func(*Config)
	}{
		{golden: "ipv4-bandwidth-tuning", cfg: func(c *Config) { c.Bandwidth, c.DisablePodIPv6 = true, true }},
		{golden: "ipv6-egress-bandwidth", cfg: func(c *Config) {
			c.Egress = &Egress{IPv6Cluster: true, Enabled: true, RandomizeSNAT: "none", NodeIP: "10.0.0.10", LogFile: "/var/log/aws-routed-eni/egress-v4-plugin.log"}
			c.MTU, c.VethPrefix, c.PodSGEnforcingMode, c.PluginLogFile, c.PluginLogLevel = 1500, "abc", "standard", "", "INFO"
			c.Bandwidth = true
		}},
		{golden: "ipv4-v6egress-tuning", cfg: func(c *Config) {
			c.Egress.Enabled, c.Egress.NodeIP = true, "2001:0db8::0010"
			c.DisablePodIPv6 = true
		}},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("testdata", tt.golden+".conflist"))
			if err != nil {
				t.Fatal(err)
			}
			cfg := base()
			tt.cfg(&cfg)
			got, err := Render(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("Render differs from upstream's re-encoded conflist (-want +got):\n%s", diff)
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestRenderOptionalPlugins(t *testing.T) {
	tests := []struct {
		name  string
		cfg   func(*Config)
		types []string
		extra map[string]any // plugin type → expected JSON object
	}{
		{name: "default chain", cfg: func(*Config) {}, types: []string{"aws-cni", "egress-cni", "portmap"}},
		{name: "no egress binary", cfg: func(c *Config) { c.Egress = nil }, types: []string{"aws-cni", "portmap"}},
		{
			name:  "bandwidth then tuning",
			cfg:   func(c *Config) { c.Bandwidth, c.DisablePodIPv6 = true, true },
			types: []string{"aws-cni", "egress-cni", "portmap", "bandwidth", "tuning"},
			extra: map[string]any{
				"bandwidth": map[string]any{"type": "bandwidth", "capabilities": map[string]any{"bandwidth": true}},
				"tuning": map[string]any{"type": "tuning", "sysctl": map[string]any{
					"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1", "net.ipv6.conf.lo.disable_ipv6": "1",
				}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.cfg(&cfg)
			b, err := Render(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				CNIVersion string           `json:"cniVersion"`
				Plugins    []map[string]any `json:"plugins"`
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, b)
			}
			var types []string
			for _, p := range got.Plugins {
				types = append(types, p["type"].(string))
				if want, ok := tt.extra[p["type"].(string)]; ok {
					if diff := cmp.Diff(want, any(p)); diff != "" {
						t.Errorf("%s plugin (-want +got):\n%s", p["type"], diff)
					}
				}
				if mtu, ok := p["mtu"]; ok {
					if _, isString := mtu.(string); !isString {
						t.Errorf("%s mtu is %T, want a JSON string", p["type"], mtu)
					}
				}
			}
			if diff := cmp.Diff(tt.types, types); diff != "" {
				t.Errorf("plugin chain (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenderRejectsBadConfig(t *testing.T) {
	cfg := base()
	cfg.VethPrefix, cfg.MTU = "", 0
	cfg.Egress.Enabled = true
	_, err := Render(cfg)
	if err == nil {
		t.Fatal("Render accepted an empty veth prefix, MTU 0 and egress without node IP")
	}
	for _, s := range []string{"veth prefix", "mtu 0", "node IP"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	cfg = base()
	cfg.Egress.NodeIP = "fe80::1%eth0"
	if _, err = Render(cfg); err == nil || !strings.Contains(err.Error(), `"fe80::1%eth0" is not an IP address`) {
		t.Errorf("Render with a malformed node IP: %v", err)
	}
}
