package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/trailer"
	"github.com/vpc-cni/vpc-cni/rpc"
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
	npaTimeout      = 2 * time.Second
	statusTimeout   = 2 * time.Second
)

// unknownPodMsg is how ipamd says it holds no address for a DEL's pod.
const unknownPodMsg = "datastore: unknown pod"

// dialUnix returns a lazily connecting client for a unix socket; the first
// RPC connects.
func dialUnix(path string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, cniplugin.Error(ErrIpamdUnreachable, "create gRPC client for "+path, err)
	}
	return conn, nil
}

// addError maps a failed AddNetwork call to a CNI error.
func addError(socket string, err error) *types.Error {
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return cniplugin.Error(ErrIpamdUnreachable, "ipamd unreachable at "+socket, err)
	case codes.ResourceExhausted:
		return types.NewError(ErrNoAddress, "no address available: "+st.Message(), "")
	}
	return cniplugin.Error(ErrIpamd, "ipamd failed to assign an address", err)
}

// maxCauseLen bounds ipamd's cause in the CNI error: it goes to the
// runtime's log and the pod's events.
const maxCauseLen = 512

// refusalMessage is the CNI error message of a Success=false ADD reply,
// with ipamd's cause from the reply's trailer when it sent one.
func refusalMessage(md metadata.MD) string {
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
func release(ctx context.Context, client rpc.CNIBackendClient, req *rpc.DelNetworkRequest) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	reply, err := client.DelNetwork(ctx, req)
	switch {
	case err != nil && isUnknownPod(err):
		return nil
	case err != nil:
		return fmt.Errorf("release via ipamd: %w", err)
	case !reply.GetSuccess():
		return errors.New("release via ipamd: ipamd reported failure")
	}
	return nil
}

// ipamdHealthy asks ipamd's gRPC health service whether it is serving.
func ipamdHealthy(ctx context.Context, socket string) error {
	conn, err := dialUnix(socket)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return fmt.Errorf("health check of %s: %w", socket, err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("ipamd at %s reports %s", socket, resp.GetStatus())
	}
	return nil
}

// enforceNetworkPolicy asks the network policy agent to apply the pod's
// policies before the pod starts (docs/compatibility.md, "gRPC services and fields").
func enforceNetworkPolicy(ctx context.Context, socket string, req *rpc.EnforceNpRequest) error {
	conn, err := dialUnix(socket)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, npaTimeout)
	defer cancel()
	// The agent may be restarting: wait for it within the deadline.
	reply, err := rpc.NewNPBackendClient(conn).EnforceNpToPod(ctx, req, grpc.WaitForReady(true))
	if err != nil {
		return cniplugin.Error(ErrNetworkPolicy, "network policy agent at "+socket+" failed to enforce policies", err)
	}
	if !reply.GetSuccess() {
		return types.NewError(ErrNetworkPolicy, "network policy agent at "+socket+" refused to enforce policies", "")
	}
	return nil
}

// deletePodPolicies tells the network policy agent the pod is gone. Only
// an unreachable agent is an error, as upstream: a refusal is logged.
func deletePodPolicies(ctx context.Context, socket string, req *rpc.DeleteNpRequest) (refused error, err error) {
	conn, err := dialUnix(socket)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, npaTimeout)
	defer cancel()
	reply, err := rpc.NewNPBackendClient(conn).DeletePodNp(ctx, req, grpc.WaitForReady(true))
	if st, _ := status.FromError(err); err != nil && (st.Code() == codes.Unavailable || st.Code() == codes.DeadlineExceeded) {
		return nil, cniplugin.Error(ErrNetworkPolicy, "network policy agent unreachable at "+socket, err)
	}
	if err != nil {
		return err, nil
	}
	if !reply.GetSuccess() {
		return errors.New("network policy agent reported failure"), nil
	}
	return nil, nil
}
