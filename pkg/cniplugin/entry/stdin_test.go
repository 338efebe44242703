package entry

import (
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

// padded is conf with trailing whitespace up to n bytes: still valid JSON,
// so only its size can make a plugin refuse it.
func padded(conf string, n int) string {
	return conf + strings.Repeat(" ", n-len(conf))
}

// TestStdinOverTheCapRefused: a valid netconf one byte over MaxStdin is
// refused with an error naming stdin, and no command runs; one that never
// ends is refused the same way after MaxStdin+1 bytes.
func TestStdinOverTheCapRefused(t *testing.T) {
	env := map[string]string{"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/var/run/netns/none", "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin"}
	conf := `{"cniVersion":"1.0.0","name":"aws-cni","type":"aws-cni"}`
	for _, cmd := range []string{"ADD", "DEL", "CHECK"} {
		env["CNI_COMMAND"] = cmd
		var o outcome
		f, _ := recorder(&o, nil)
		runOurs(env, padded(conf, MaxStdin+1), f, &o)
		if o.Called != "" {
			t.Errorf("%s with %d bytes of stdin ran the command", cmd, MaxStdin+1)
		}
		if o.Err == nil || o.Err.Code != types.ErrInvalidNetworkConfig || !strings.Contains(o.Err.Msg, "stdin (the network configuration) is over 1048576 bytes") {
			t.Errorf("%s with %d bytes of stdin: error %v, want code %d naming stdin and its limit", cmd, MaxStdin+1, o.Err, types.ErrInvalidNetworkConfig)
		}
	}

	var o outcome
	f, _ := recorder(&o, nil)
	d := dispatcher{getenv: func(k string) string { return env[k] }, stdin: endless{}, stdout: &strings.Builder{}, stderr: &strings.Builder{}}
	if err := d.run(f, "about"); err == nil || err.Code != types.ErrInvalidNetworkConfig || o.Called != "" {
		t.Errorf("endless stdin: error %v, command %q; want code %d and no command", err, o.Called, types.ErrInvalidNetworkConfig)
	}
}

// endless is a stdin that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}
