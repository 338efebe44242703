package vpcsim_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// fromAddr serves h as if every request came from addr (a process on the
// instance whose packets carry that source, as in the local VPC's data
// plane, where IMDSHandlerByRemoteAddr is reached from the nodes).
func fromAddr(h http.Handler, addr string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.RemoteAddr = net.JoinHostPort(addr, "40000")
		h.ServeHTTP(w, r)
	})
}

// TestIMDSAnswersEveryAddressOfTheInstance: EC2's IMDS answers whatever
// address of the instance a request leaves from, not only the primary
// one: a pod whose traffic is not SNATed (AWS_VPC_K8S_CNI_EXTERNALSNAT,
// hop limit 2) reads its node's metadata from its own secondary address.
// An address no instance holds is refused.
func TestIMDSAnswersEveryAddressOfTheInstance(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	inst, err := env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	eni := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID)})
	if _, err := attach(c, t, eni, 1); err != nil {
		t.Fatal(err)
	}
	out := must[*ec2.AssignPrivateIpAddressesOutput](t)(c.AssignPrivateIpAddresses(ctx(t), &ec2.AssignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String(eni), SecondaryPrivateIpAddressCount: aws.Int32(1)}))
	podIP := aws.ToString(out.AssignedPrivateIpAddresses[0].PrivateIpAddress)

	for _, src := range []string{inst.PrimaryIP.String(), podIP} {
		srv := httptest.NewServer(fromAddr(env.Sim.IMDSHandlerByRemoteAddr(), src))
		got, err := getMeta(t, newIMDS(srv.URL), "instance-id")
		srv.Close()
		if err != nil || got != simtest.InstanceID {
			t.Errorf("instance-id asked from %s: %q, %v; want %s", src, got, err, simtest.InstanceID)
		}
	}
	srv := httptest.NewServer(fromAddr(env.Sim.IMDSHandlerByRemoteAddr(), "10.99.99.99"))
	defer srv.Close()
	if got, err := getMeta(t, newIMDS(srv.URL), "instance-id"); err == nil {
		t.Errorf("instance-id asked from an address no instance holds: %q, want an error", got)
	}
}
