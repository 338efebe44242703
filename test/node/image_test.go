package node

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/testutil/agentbin"
)

// TestPrivilegedImageContents builds the aws-node images from a clean context and
// checks what a node gets: exactly the entrypoint's files under /app, the
// packet-filter tools ipamd execs, and binaries that run from the image's
// own root filesystem.
func TestPrivilegedImageContents(t *testing.T) {
	imgs := buildImages(t)

	root := t.TempDir()
	cfg, err := unpackOCI(imgs[mainImage], root)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Entrypoint, []string{"/app/aws-vpc-cni"}) || len(cfg.Cmd) != 0 {
		t.Errorf("entrypoint %q cmd %q, want [/app/aws-vpc-cni] and no arguments", cfg.Entrypoint, cfg.Cmd)
	}
	want := []string{"10-aws.conflist", "aws-cni", "aws-k8s-agent", "aws-vpc-cni", "grpc-health-probe", "max-pods"}
	if _, err := os.Stat(filepath.Join(agentbin.RepoRoot(), "cmd", "egress-cni")); err == nil {
		want = append(want, "egress-cni")
		sort.Strings(want)
	}
	if got := listDir(t, filepath.Join(root, "app")); !slices.Equal(got, want) {
		t.Errorf("/app holds %q, want %q", got, want)
	}
	if l, err := os.Readlink(filepath.Join(root, "app", "grpc-health-probe")); err != nil || l != "aws-vpc-cni" {
		t.Errorf("/app/grpc-health-probe: link %q (%v), want a link to aws-vpc-cni (the probe the DaemonSet execs)", l, err)
	}

	// What is copied to the host must run with any host libc.
	for _, p := range []string{"aws-cni", "egress-cni"} {
		assertStatic(t, filepath.Join(root, "app", p))
	}

	// The binaries run from the image's root, with only its libraries.
	out, _ := chrootRun(t, root, nil, "", "/app/aws-vpc-cni", "--help")
	if !strings.Contains(out, "-ipamd") || !strings.Contains(out, "-plugin-dir") {
		t.Errorf("aws-vpc-cni --help from the image printed %q, want its flags", out)
	}
	out, err = chrootRun(t, root, []string{"CNI_COMMAND=VERSION"}, `{"cniVersion":"1.0.0"}`, "/app/aws-cni")
	if err != nil {
		t.Fatalf("aws-cni VERSION from the image: %v: %s", err, out)
	}
	var ver struct {
		Supported []string `json:"supportedVersions"`
	}
	if err := json.Unmarshal([]byte(out), &ver); err != nil || !slices.Contains(ver.Supported, "1.0.0") {
		t.Errorf("aws-cni VERSION printed %q (%v), want supportedVersions with 1.0.0", out, err)
	}
	for _, tool := range [][]string{{"/usr/sbin/iptables-legacy", "--version"}, {"/usr/sbin/iptables-nft", "--version"}, {"/usr/sbin/ip6tables", "--version"}, {"/usr/sbin/nft", "--version"}} {
		if out, err := chrootRun(t, root, nil, "", tool...); err != nil {
			t.Errorf("%s from the image: %v: %s", tool[0], err, out)
		}
	}

	initRoot := t.TempDir()
	icfg, err := unpackOCI(imgs[initImage], initRoot)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(icfg.Entrypoint, []string{"/init/aws-vpc-cni-init", "init"}) {
		t.Errorf("init entrypoint %q", icfg.Entrypoint)
	}
	wantInit := []string{"aws-vpc-cni-init", "bandwidth", "host-local", "loopback", "portmap", "tuning"}
	if got := listDir(t, filepath.Join(initRoot, "init")); !slices.Equal(got, wantInit) {
		t.Errorf("/init holds %q, want %q", got, wantInit)
	}
	for _, p := range wantInit[1:] {
		assertStatic(t, filepath.Join(initRoot, "init", p))
	}
	if out, err := chrootRun(t, initRoot, []string{"CNI_COMMAND=VERSION"}, `{"cniVersion":"1.0.0"}`, "/init/loopback"); err != nil || !strings.Contains(out, "1.0.0") {
		t.Errorf("loopback VERSION from the init image: %v: %s", err, out)
	}

	for _, name := range []string{mainImage, initImage} {
		raw, gz := imageSizes(t, imgs[name])
		t.Logf("%s: %.1f MB uncompressed, %.1f MB gzip-compressed layers", name, float64(raw)/1e6, float64(gz)/1e6)
	}
}

// assertStatic fails if the ELF file at p needs a dynamic loader. A
// missing optional binary (egress-cni) is skipped.
func assertStatic(t *testing.T, p string) {
	t.Helper()
	f, err := elf.Open(p)
	if errors.Is(err, os.ErrNotExist) && strings.HasSuffix(p, "egress-cni") {
		return
	}
	if err != nil {
		t.Errorf("%s: %v", p, err)
		return
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked; it runs on the host and must be static", filepath.Base(p))
		}
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// chrootRun runs argv with root as its root directory and returns stdout
// and stderr together.
func chrootRun(t *testing.T, root string, env []string, stdin string, argv ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	cmd.Dir = "/"
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// imageSizes returns the uncompressed and gzip-compressed sizes of an
// image's layers (as a registry would store them).
func imageSizes(t *testing.T, archive string) (raw, gz int64) {
	t.Helper()
	blobs, err := readArchive(archive)
	if err != nil {
		t.Fatal(err)
	}
	var index struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	var manifest struct {
		Layers []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
		} `json:"layers"`
	}
	if json.Unmarshal(blobs["index.json"], &index) != nil || len(index.Manifests) == 0 ||
		json.Unmarshal(blobs[blobPath(index.Manifests[0].Digest)], &manifest) != nil {
		t.Fatalf("%s: unreadable index or manifest", archive)
	}
	for _, l := range manifest.Layers {
		data := blobs[blobPath(l.Digest)]
		if strings.HasSuffix(l.MediaType, "gzip") {
			gz += int64(len(data))
			r, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, r)
			raw += n
			continue
		}
		raw += int64(len(data))
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		_, _ = w.Write(data)
		_ = w.Close()
		gz += int64(buf.Len())
	}
	return raw, gz
}
