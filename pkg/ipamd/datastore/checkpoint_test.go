package datastore

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCheckpointRoundTripKeepsCooldown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipam.json")
	clock := newClock()
	s := newFileStore(t, path, ModePrefixIPv4, clock)
	upstreamNode(t, s)
	for i := 1; i <= 4; i++ {
		if _, err := s.Assign(podKey(i), podMeta(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Unassign(podKey(2)); err != nil { // 10.0.2.1 cools
		t.Fatal(err)
	}
	clock.advance(10 * time.Second)
	before := s.AllocatedIPs()

	// Restart.
	s2 := newFileStore(t, path, ModePrefixIPv4, clock)
	upstreamNode(t, s2)
	res, err := s2.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, s2)
	if len(res.Restored) != 3 {
		t.Fatalf("restored %+v", res)
	}
	if after := s2.AllocatedIPs(); !slices.EqualFunc(before, after, func(a, b Assignment) bool {
		return a.Key == b.Key && a.Addr == b.Addr && a.Meta == b.Meta && a.AssignedAt.Equal(b.AssignedAt) && a.ENIID == b.ENIID
	}) {
		t.Fatalf("allocations changed across restart:\n%+v\n%+v", before, after)
	}
	if st := s2.Stats(); st.CoolingIPs != 1 || st.AssignedIPs != 3 {
		t.Fatalf("cooldown lost across restart: %+v", st)
	}
	if a, err := s2.Assign(podKey(5), podMeta(5)); err != nil || a.Addr != ip("10.0.2.4") {
		t.Fatalf("cooling 10.0.2.1 handed out after restart: %+v %v", a, err)
	}
	clock.advance(20 * time.Second)
	if st := s2.Stats(); st.CoolingIPs != 0 {
		t.Fatalf("cooldown did not end on time: %+v", st)
	}
	if a, err := s2.Assign(podKey(6), podMeta(6)); err != nil || a.Addr != ip("10.0.2.1") {
		t.Fatalf("cooled address: %+v %v", a, err)
	}
	checkInvariants(t, s2)
}

func TestCheckpointBadInput(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string
	}{
		{"wrong version", `{"version":"vpc-cni-ipam/2","allocations":[]}`, []string{`"vpc-cni-ipam/2"`, "unsupported version"}},
		{"no version", `{"allocations":[]}`, []string{`unsupported version ""`}},
		{"corrupt JSON", `{"version":"vpc-cni-ipam/1","allocations":[{"networkName":`, []string{"corrupt JSON", "offset"}},
		{"garbage", "\x00\x01not json", []string{"corrupt JSON at byte offset 1"}},
		{"wrong type", `{"version":"vpc-cni-ipam/1","allocations":{"a":1}}`, []string{"unexpected JSON type at byte offset"}},
		{"bad ipv4", `{"version":"vpc-cni-ipam/1","allocations":[{"networkName":"n","containerID":"c1","ifName":"eth0","ipv4":"10.0.1.300"}]}`,
			[]string{"allocation 0", `"c1"`, `invalid ipv4 "10.0.1.300"`}},
		{"ipv6 in ipv4", `{"version":"vpc-cni-ipam/1","allocations":[{"networkName":"n","containerID":"c1","ifName":"eth0","ipv4":"2001:db8::1"}]}`,
			[]string{`invalid ipv4 "2001:db8::1"`}},
		{"no address", `{"version":"vpc-cni-ipam/1","allocations":[{"networkName":"n","containerID":"c1","ifName":"eth0"}]}`,
			[]string{"no ipv4 or ipv6 address"}},
		{"duplicate address", `{"version":"vpc-cni-ipam/1","allocations":[` +
			`{"networkName":"n","containerID":"c1","ifName":"eth0","ipv4":"10.0.1.23"},` +
			`{"networkName":"n","containerID":"c2","ifName":"eth0","ipv4":"10.0.1.23"}]}`,
			[]string{"duplicate address 10.0.1.23", "n/c1/eth0", "n/c2/eth0"}},
		{"duplicate key", `{"version":"vpc-cni-ipam/1","allocations":[` +
			`{"networkName":"n","containerID":"c1","ifName":"eth0","ipv4":"10.0.1.23"},` +
			`{"networkName":"n","containerID":"c1","ifName":"eth0","ipv4":"10.0.1.40"}]}`,
			[]string{"duplicate key n/c1/eth0", "10.0.1.23", "10.0.1.40"}},
		{"bad cooling entry", `{"version":"vpc-cni-ipam/1","allocations":[],"unassigned":[{"ipv4":"x"}]}`,
			[]string{"unassigned entry 0", `invalid ipv4 "x"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ipam.json")
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			s := newFileStore(t, path, ModeSecondaryIPv4, newClock())
			upstreamNode(t, s)
			_, err := s.Load(nil)
			if !errors.Is(err, ErrCheckpoint) {
				t.Fatalf("got %v, want ErrCheckpoint", err)
			}
			for _, w := range append(tc.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if st := s.Stats(); st.Pods != 0 || st.CoolingIPs != 0 {
				t.Fatalf("a rejected checkpoint changed the store: %+v", st)
			}
			if data, _ := os.ReadFile(path); string(data) != tc.content {
				t.Fatal("a rejected checkpoint was overwritten: the evidence is gone")
			}
		})
	}
}

func TestFileCheckpointerWriteErrors(t *testing.T) {
	dir := t.TempDir()
	// The target is a directory: rename fails, no temp file may remain.
	target := filepath.Join(dir, "ipam.json")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	cp := NewFileCheckpointer(target)
	err := cp.Write(File{Version: CheckpointVersion})
	if !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), target) {
		t.Fatalf("write over a directory: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temp files left behind: %v", entries)
	}
	missing := filepath.Join(dir, "no-such-dir", "ipam.json")
	if err := NewFileCheckpointer(missing).Write(File{Version: CheckpointVersion}); !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("write into a missing directory: %v", err)
	}
}

func TestCheckpointPath(t *testing.T) {
	tests := []struct {
		base string
		card int
		want string
	}{
		{DefaultCheckpointPath, 0, "/var/run/aws-node/ipam.json"},
		{DefaultCheckpointPath, 1, "/var/run/aws-node/ipam-nic-1.json"},
		{"/tmp/x/store.json", 3, "/tmp/x/store-nic-3.json"},
		{"/tmp/x/store", 2, "/tmp/x/store-nic-2"},
	}
	for _, tc := range tests {
		if got := CheckpointPath(tc.base, tc.card); got != tc.want {
			t.Errorf("CheckpointPath(%q, %d) = %q, want %q", tc.base, tc.card, got, tc.want)
		}
	}
}
