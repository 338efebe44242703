package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin/entry"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/ipamclient"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/trailer"
	"github.com/vpc-cni/vpc-cni/pkg/podnet"
)

// Socket paths and the environment variables that override them (the
// netconf fields ipamdSocket/npaSocket take precedence over both).
const (
	defaultIpamdSocket = hostcontract.IpamdSocket
	defaultNPASocket   = hostcontract.NPASocket
	ipamdSocketEnv     = "VPC_CNI_IPAMD_SOCKET"
	npaSocketEnv       = "VPC_CNI_NPA_SOCKET"
)

// Deadlines of the plugin's calls. They stay well below the runtime's own
// (kubelet's CRI timeout is minutes) so the plugin reports its own error.
// ADD gets the longest: ipamd may wait for the pool to refill within it.
const (
	addTimeout      = 20 * time.Second
	delTimeout      = 10 * time.Second
	rollbackTimeout = 5 * time.Second
	// teardownTimeout bounds DEL's node-side teardown after ipamd's
	// answer, or its absence, whatever remains of the DEL's own time.
	teardownTimeout = 5 * time.Second
	npaTimeout      = podnet.PolicyCallTimeout
	statusTimeout   = 2 * time.Second
)

// unknownPodMsg is how ipamd says it holds no address for a DEL's pod.
const unknownPodMsg = "datastore: unknown pod"

// addError maps a failed AddNetwork call to a CNI error.
func addError(socket string, err error) *types.Error {
	switch ipamclient.CodeOf(err) {
	case ipamclient.Unavailable, ipamclient.DeadlineExceeded, ipamclient.Canceled:
		return entry.Error(ErrIpamdUnreachable, "ipamd unreachable at "+socket, err)
	case ipamclient.ResourceExhausted:
		return types.NewError(ErrNoAddress, "no address available: "+ipamclient.MessageOf(err), "")
	}
	return entry.Error(ErrIpamd, "ipamd failed to assign an address", err)
}

// maxCauseLen bounds ipamd's cause in the CNI error: it goes to the
// runtime's log and the pod's events.
const maxCauseLen = 512

// refusalMessage is the CNI error message of a Success=false ADD reply,
// with ipamd's cause from the reply's trailer when it sent one.
func refusalMessage(md ipamclient.Metadata) string {
	msg := "no address available: ipamd failed to assign an IP address"
	cause := strings.Join(md.Get(trailer.Cause), "; ")
	if len(cause) > maxCauseLen {
		cause = strings.ToValidUTF8(cause[:maxCauseLen], "") + "…"
	}
	if cause == "" {
		return msg
	}
	return msg + ": " + cause
}

// isUnknownPod reports ipamd's answer for a pod it holds nothing for.
func isUnknownPod(err error) bool {
	return err != nil && strings.Contains(err.Error(), unknownPodMsg)
}

// release gives back the addresses of an ADD that failed after ipamd
// assigned them. It runs on its own deadline: the ADD's may be spent.
func release(ctx context.Context, client *ipamclient.Client, req *ipamclient.DelNetworkRequest) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	reply, err := client.DelNetwork(ctx, req)
	switch {
	case err != nil && isUnknownPod(err):
		return nil
	case err != nil:
		return fmt.Errorf("release via ipamd: %w", err)
	case !reply.Success:
		return errors.New("release via ipamd: ipamd reported failure")
	}
	return nil
}

// ipamdHealthy asks ipamd's gRPC health service whether it is serving.
func ipamdHealthy(ctx context.Context, socket string) error {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	st, err := (&ipamclient.Client{Socket: socket}).Check(ctx, "")
	if err != nil {
		return fmt.Errorf("health check of %s: %w", socket, err)
	}
	if st != ipamclient.HealthServing {
		return fmt.Errorf("ipamd at %s reports %s", socket, st)
	}
	return nil
}

// enforceNetworkPolicy asks the network policy agent to apply the pod's
// policies before the pod starts (docs/compatibility.md, "gRPC services and fields").
func enforceNetworkPolicy(ctx context.Context, socket string, req *ipamclient.EnforceNpRequest) error {
	ctx, cancel := context.WithTimeout(ctx, npaTimeout)
	defer cancel()
	// The agent may be restarting: wait for it within the deadline.
	ok, err := (&ipamclient.Client{Socket: socket, WaitForReady: true}).EnforceNpToPod(ctx, req)
	if err != nil {
		return entry.Error(ErrNetworkPolicy, "network policy agent at "+socket+" failed to enforce policies", err)
	}
	if !ok {
		return types.NewError(ErrNetworkPolicy, "network policy agent at "+socket+" refused to enforce policies", "")
	}
	return nil
}

// deletePodPolicies tells the network policy agent the pod is gone. Only
// an unreachable agent is an error, as upstream: a refusal is logged.
func deletePodPolicies(ctx context.Context, socket string, req *ipamclient.DeleteNpRequest) (refused error, err error) {
	ctx, cancel := context.WithTimeout(ctx, npaTimeout)
	defer cancel()
	ok, err := (&ipamclient.Client{Socket: socket, WaitForReady: true}).DeletePodNp(ctx, req)
	if c := ipamclient.CodeOf(err); c == ipamclient.Unavailable || c == ipamclient.DeadlineExceeded {
		return nil, entry.Error(ErrNetworkPolicy, "network policy agent unreachable at "+socket, err)
	}
	if err != nil {
		return err, nil
	}
	if !ok {
		return errors.New("network policy agent reported failure"), nil
	}
	return nil, nil
}
