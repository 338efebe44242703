// Package node is the real-node tier: the aws-node images built with
// buildah, and local-VPC nodes running containerd and kubelet against a real
// kube-apiserver, with aws-node deployed from misc/aws-k8s-cni.yaml. Every
// test skips loudly, naming what the machine lacks.
package node

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/agentbin"
)

// The images scripts/build-image.sh builds (tag "dev", as in the manifest).
const (
	mainImage  = "localhost/vpc-cni/aws-vpc-cni:dev"
	initImage  = "localhost/vpc-cni/aws-vpc-cni-init:dev"
	pauseImage = "localhost/vpc-cni/pause:test"
	bboxImage  = "localhost/vpc-cni/busybox:test"
)

var images struct {
	once sync.Once
	m    map[string]string // image → OCI archive
	skip string
	err  string
}

// buildImages runs scripts/build-image.sh --test-images once per test binary
// and returns image → archive path. Skips when the machine cannot build.
func buildImages(t *testing.T) map[string]string {
	t.Helper()
	testutil.Privileged(t)
	images.once.Do(func() {
		for _, tool := range []string{"buildah", "debootstrap", "busybox"} {
			if _, err := exec.LookPath(tool); err != nil {
				images.skip = "NODE TIER SKIPPED: " + tool + " is not installed (scripts/install-deps.sh installs it)"
				return
			}
		}
		root := agentbin.RepoRoot()
		out := filepath.Join(root, "bin", "images")
		cmd := exec.Command(filepath.Join(root, "scripts", "build-image.sh"), "--test-images", "-o", out)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "BIN="+filepath.Join(root, "bin"))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.Output()
		if err != nil {
			images.err = "scripts/build-image.sh: " + err.Error() + "\n" + stderr.String()
			return
		}
		images.m = map[string]string{}
		sc := bufio.NewScanner(strings.NewReader(string(stdout)))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 2 {
				images.m[f[0]] = f[1]
			}
		}
	})
	if images.skip != "" {
		t.Skip(images.skip)
	}
	if images.err != "" {
		t.Fatal(images.err)
	}
	for _, img := range []string{mainImage, initImage, pauseImage, bboxImage} {
		if images.m[img] == "" {
			t.Fatalf("scripts/build-image.sh did not report %s (got %v)", img, images.m)
		}
	}
	return images.m
}
