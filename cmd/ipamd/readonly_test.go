package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestPrivilegedHealthWithReadOnlyCheckpointDir: ipamd runs in a private
// mount namespace of its own; its checkpoint directory is remounted
// read-only there (root cannot write it either, as with a read-only
// /var/run/aws-node), then read-write again. Health answers NOT_SERVING
// while ADDs fail on the checkpoint and SERVING once it can be written. The
// test's own mount namespace is never changed.
func TestPrivilegedHealthWithReadOnlyCheckpointDir(t *testing.T) {
	testutil.Privileged(t)
	env := simtest.Start(t, simtest.Basic())
	ckdir := filepath.Join(t.TempDir(), "aws-node")
	if err := os.Mkdir(ckdir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := startInMountNS(t, env, ckdir, false)
	d, inNS, waitHealth, conn := p.d, p.inNS, p.waitHealth, p.conn
	waitHealth(healthpb.HealthCheckResponse_SERVING)
	cni := rpc.NewCNIBackendClient(conn)
	add := func(id string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_, err := cni.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: id, IfName: "eth0"})
		return err
	}
	if err := add("before"); err != nil {
		t.Fatalf("ADD: %v", err)
	}

	inNS("mount", "--bind", ckdir, ckdir)
	inNS("mount", "-o", "remount,bind,ro", ckdir)
	if err := add("during"); err == nil || !strings.Contains(err.Error(), "checkpoint") {
		t.Errorf("ADD with a read-only checkpoint directory: %v, want a checkpoint error", err)
	}
	waitHealth(healthpb.HealthCheckResponse_NOT_SERVING)
	// Only ipamd's namespace sees the read-only mount.
	if err := os.WriteFile(filepath.Join(ckdir, "probe"), nil, 0o600); err != nil {
		t.Errorf("the test's own view of the directory changed: %v", err)
	}

	inNS("mount", "-o", "remount,bind,rw", ckdir)
	waitHealth(healthpb.HealthCheckResponse_SERVING)
	if err := add("after"); err != nil {
		t.Errorf("ADD after the directory is writable again: %v", err)
	}
	if err := d.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// nsDaemon is an ipamd process in a private mount namespace of its own.
type nsDaemon struct {
	d          *daemon
	inNS       func(args ...string)
	waitHealth func(want healthpb.HealthCheckResponse_ServingStatus)
	conn       *grpc.ClientConn
}

// startInMountNS starts ipamd against env in a private mount namespace,
// its checkpoint in ckdir; with readOnly, ckdir is already read-only there
// when ipamd starts.
func startInMountNS(t *testing.T, env *simtest.Env, ckdir string, readOnly bool) nsDaemon {
	t.Helper()
	d := simDaemon(t, env, "AWS_VPC_K8S_CNI_BACKING_STORE="+filepath.Join(ckdir, "ipam.json"))
	d.runs++
	logf, err := os.Create(filepath.Join(d.dir, fmt.Sprintf("ipamd-%d.log", d.runs)))
	if err != nil {
		t.Fatal(err)
	}
	// unshare (and sh's exec) run ipamd in place, so the pid is ipamd's.
	args := []string{"--mount", "--propagation", "private", d.bin}
	if readOnly {
		args = []string{"--mount", "--propagation", "private", "sh", "-c",
			`mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && exec "$2"`, "sh", ckdir, d.bin}
	}
	cmd := exec.Command("unshare", args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = d.env, logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = logf.Close()
	d.cmd = cmd
	p := nsDaemon{d: d}
	p.inNS = func(args ...string) {
		t.Helper()
		full := append([]string{"-t", fmt.Sprint(cmd.Process.Pid), "-m", "--"}, args...)
		if out, err := exec.Command("nsenter", full...).CombinedOutput(); err != nil {
			t.Fatalf("nsenter %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	conn, err := grpc.NewClient("unix://"+filepath.Join(d.dir, "ipamd.sock"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	p.conn = conn
	health := func() healthpb.HealthCheckResponse_ServingStatus {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "grpc.health.v1.aws-node"})
		if err != nil {
			return healthpb.HealthCheckResponse_UNKNOWN
		}
		return r.Status
	}
	p.waitHealth = func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); health() != want; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("health never became %s:\n%s", want, tail(d.log(d.runs), 30))
			}
		}
	}
	return p
}

// TestPrivilegedStartsWithReadOnlyCheckpointDir: with the checkpoint
// directory read-only from the start, ipamd still starts and restores its
// pods from the file it can read (no crash loop), answers NOT_SERVING, and
// turns SERVING once the directory is writable again.
func TestPrivilegedStartsWithReadOnlyCheckpointDir(t *testing.T) {
	testutil.Privileged(t)
	env := simtest.Start(t, simtest.Basic())
	ckdir := filepath.Join(t.TempDir(), "aws-node")
	if err := os.Mkdir(ckdir, 0o755); err != nil {
		t.Fatal(err)
	}
	first := startInMountNS(t, env, ckdir, false)
	first.waitHealth(healthpb.HealthCheckResponse_SERVING)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := rpc.NewCNIBackendClient(first.conn).AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "kept", IfName: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.d.stop(); err != nil {
		t.Fatal(err)
	}

	p := startInMountNS(t, env, ckdir, true)
	p.waitHealth(healthpb.HealthCheckResponse_NOT_SERVING)
	if _, err := p.d.logAttr("checkpoint restored but cannot be written; serving NOT_SERVING until it can", "err", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// The restored pod kept its address: a repeated ADD returns it. (A
	// fresh deadline: the second start may have used up the first ADD's.)
	actx, acancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer acancel()
	again, err := rpc.NewCNIBackendClient(p.conn).AddNetwork(actx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "kept", IfName: "eth0"})
	if err != nil || again.IpAllocationMetadata[0].Ipv4Addr != r.IpAllocationMetadata[0].Ipv4Addr {
		t.Errorf("repeated ADD of the restored pod: %v %v, want %s", again, err, r.IpAllocationMetadata[0].Ipv4Addr)
	}
	p.inNS("mount", "-o", "remount,bind,rw", ckdir)
	p.waitHealth(healthpb.HealthCheckResponse_SERVING)
	if err := p.d.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}
