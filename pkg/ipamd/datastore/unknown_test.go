package datastore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// newerUpstream is the checkpoint as a newer upstream writes and reads it:
// upstream's fields and, at the top level and in each allocation, fields
// this version does not know.
type newerUpstream struct {
	Version  string `json:"version"`
	NodeName string `json:"nodeName"`
	Features struct {
		Fast bool `json:"fast"`
	} `json:"features"`
	Allocations []newerAllocation `json:"allocations"`
	Unassigned  json.RawMessage   `json:"unassigned,omitempty"` // ours; upstream skips it
}

type newerAllocation struct {
	NetworkName         string `json:"networkName"`
	ContainerID         string `json:"containerID"`
	IfName              string `json:"ifName"`
	IPv4                string `json:"ipv4,omitempty"`
	AllocationTimestamp int64  `json:"allocationTimestamp"`
	Metadata            *struct {
		K8sPodNamespace string `json:"k8sPodNamespace,omitempty"`
		K8sPodName      string `json:"k8sPodName,omitempty"`
		InterfacesCount int    `json:"interfacesCount,omitempty"`
	} `json:"metadata,omitempty"`
	PodUID  string `json:"podUID,omitempty"`
	Sandbox *struct {
		Netns string   `json:"netns"`
		Tags  []string `json:"tags"`
	} `json:"sandbox,omitempty"`
}

// readNewer reads a checkpoint as the newer upstream does, refusing any
// field it does not know.
func readNewer(t *testing.T, path string) newerUpstream {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f newerUpstream
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		t.Fatalf("the newer upstream cannot read %s: %v", data, err)
	}
	return f
}

// TestUnknownCheckpointFieldsKept: a checkpoint written by an upstream
// newer than ours (or by the upstream a node is downgraded to after it
// rewrote fields ipamd does not know) carries fields at the top level and
// in allocations. ipamd restores it, serves pods (their writes go to the
// log), folds the log into the file, restarts and writes it whole again:
// the newer upstream then reads its fields back as it wrote them, on the
// allocations that are still there; a new pod's entry has none.
func TestUnknownCheckpointFieldsKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipam.json")
	written := `{"version":"vpc-cni-ipam/1","nodeName":"ip-10-0-1-5","features":{"fast":true},"allocations":[` +
		`{"networkName":"aws-cni","containerID":"web","ifName":"eth0","ipv4":"10.0.1.23","allocationTimestamp":1724112000000000000,` +
		`"metadata":{"k8sPodNamespace":"default","k8sPodName":"web-1"},"podUID":"u-1","sandbox":{"netns":"/var/run/netns/a","tags":["x","<y>"]}},` +
		`{"networkName":"aws-cni","containerID":"old","ifName":"eth0","ipv4":"10.0.1.40","allocationTimestamp":1724112001000000000,"podUID":"u-2"}]}` + "\n"
	if err := os.WriteFile(path, []byte(written), 0o644); err != nil {
		t.Fatal(err)
	}
	open := func() (*Store, *LogCheckpointer) {
		t.Helper()
		cp := NewLogCheckpointer(path)
		cp.IdleFold = -1
		s, err := New(Options{Mode: ModeSecondaryIPv4, CooldownPeriod: time.Second, Checkpointer: cp, Now: newClock().now})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AddENI(ENI{ID: "eni-0", IsPrimary: true}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{"10.0.1.23/32", "10.0.1.40/32", "10.0.1.41/32"} {
			if err := s.AddCIDR("eni-0", pfx(c)); err != nil {
				t.Fatal(err)
			}
		}
		return s, cp
	}
	s, cp := open()
	if res, err := s.Load(nil); err != nil || len(res.Restored) != 2 {
		t.Fatalf("restore: %+v %v", res, err)
	}
	if _, err := s.Unassign(Key{"aws-cni", "old", "eth0"}); err != nil {
		t.Fatal(err)
	}
	if a, err := s.Assign(podKey(1), podMeta(1)); err != nil || a.Addr != ip("10.0.1.41") {
		t.Fatalf("new pod: %+v %v", a, err)
	}
	check := func(when string) {
		t.Helper()
		f := readNewer(t, path)
		if f.NodeName != "ip-10-0-1-5" || !f.Features.Fast {
			t.Errorf("%s: top-level fields lost: %+v", when, f)
		}
		if len(f.Allocations) != 2 {
			t.Fatalf("%s: %d allocations, want web and the new pod: %+v", when, len(f.Allocations), f.Allocations)
		}
		for _, a := range f.Allocations {
			switch a.ContainerID {
			case "web":
				if a.PodUID != "u-1" || a.Sandbox == nil || a.Sandbox.Netns != "/var/run/netns/a" ||
					fmt.Sprint(a.Sandbox.Tags) != "[x <y>]" || a.Metadata == nil || a.Metadata.K8sPodName != "web-1" {
					t.Errorf("%s: web's entry lost fields: %+v", when, a)
				}
			case podKey(1).ContainerID:
				if a.PodUID != "" || a.Sandbox != nil {
					t.Errorf("%s: the new pod's entry has fields it never had: %+v", when, a)
				}
			default:
				t.Errorf("%s: unexpected allocation %+v", when, a)
			}
		}
	}
	// The base file and its log, as a restart after a crash reads them.
	if got, err := NewLogCheckpointer(path).Read(); err != nil || len(got.Allocations) != 2 || got.extra == "" {
		t.Fatalf("file and log read back: %+v %v", got, err)
	}
	if err := cp.Close(); err != nil {
		t.Fatal(err)
	}
	check("after the log was folded")

	// A restart restores the folded file and writes it whole again.
	s2, cp2 := open()
	if res, err := s2.Load(nil); err != nil || len(res.Restored) != 2 {
		t.Fatalf("second restore: %+v %v", res, err)
	}
	if err := cp2.Close(); err != nil {
		t.Fatal(err)
	}
	check("after a restart")
}

// TestUnknownFieldsKeepReadableCheckpointsReadable: checkpoints that
// encoding/json (upstream's decoder, and ours before unknown fields were
// kept) reads, without an "allocations" member or with it in another case,
// still restore, with their entries and unknown fields.
func TestUnknownFieldsKeepReadableCheckpointsReadable(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		allocs     int
		extra      string // the first allocation's kept members
	}{
		{"no allocations member", `{"version":"vpc-cni-ipam/1","nodeName":"n"}`, 0, ""},
		{"allocations in another case", `{"version":"vpc-cni-ipam/1","Allocations":[{"networkName":"aws-cni",` +
			`"containerID":"c1","ifName":"eth0","ipv4":"10.0.0.5","allocationTimestamp":1,"podUID":"u1"}]}`, 1, `"podUID":"u1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := DecodeFile("ipam.json", []byte(tc.data))
			if err != nil {
				t.Fatalf("a checkpoint encoding/json reads is refused: %v", err)
			}
			if len(f.Allocations) != tc.allocs {
				t.Fatalf("%d allocations, want %d", len(f.Allocations), tc.allocs)
			}
			if tc.allocs > 0 && f.Allocations[0].extra.entry != tc.extra {
				t.Errorf("kept %q of the allocation, want %q", f.Allocations[0].extra.entry, tc.extra)
			}
		})
	}
}

// TestUnknownMetadataFieldsKept: a newer upstream's members inside an
// allocation's "metadata" object are kept as the allocation's own are:
// restored, logged, folded and written back, and absent from a new pod's.
func TestUnknownMetadataFieldsKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipam.json")
	written := `{"version":"vpc-cni-ipam/1","allocations":[` +
		`{"networkName":"aws-cni","containerID":"web","ifName":"eth0","ipv4":"10.0.1.23","allocationTimestamp":1724112000000000000,` +
		`"metadata":{"k8sPodNamespace":"default","k8sPodName":"web-1","k8sPodUID":"u-1","labels":{"app":"web"}}}]}` + "\n"
	if err := os.WriteFile(path, []byte(written), 0o644); err != nil {
		t.Fatal(err)
	}
	cp := NewLogCheckpointer(path)
	cp.IdleFold = -1
	s, err := New(Options{Mode: ModeSecondaryIPv4, CooldownPeriod: time.Second, Checkpointer: cp, Now: newClock().now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddENI(ENI{ID: "eni-0", IsPrimary: true}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"10.0.1.23/32", "10.0.1.41/32"} {
		if err := s.AddCIDR("eni-0", pfx(c)); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := s.Load(nil); err != nil || len(res.Restored) != 1 {
		t.Fatalf("restore: %+v %v", res, err)
	}
	if _, err := s.Assign(podKey(1), podMeta(1)); err != nil {
		t.Fatal(err)
	}
	if err := cp.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Allocations []struct {
			ContainerID string                     `json:"containerID"`
			Metadata    map[string]json.RawMessage `json:"metadata"`
		} `json:"allocations"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Allocations) != 2 {
		t.Fatalf("written: %s", data)
	}
	for _, a := range f.Allocations {
		uid, labels := string(a.Metadata["k8sPodUID"]), string(a.Metadata["labels"])
		switch a.ContainerID {
		case "web":
			if uid != `"u-1"` || labels != `{"app":"web"}` || string(a.Metadata["k8sPodName"]) != `"web-1"` {
				t.Errorf("web's metadata lost members: %s", data)
			}
		default:
			if uid != "" || labels != "" {
				t.Errorf("the new pod's metadata has members it never had: %s", data)
			}
		}
	}
}
