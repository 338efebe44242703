package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"--cluster-name=c1", "--vpc-id=vpc-1", "--branch-eni-cooldown=30s"})
	if err != nil || o.clusterName != "c1" || o.cooldown != 30*time.Second || o.webhookPort != 9443 || o.healthAddr != ":61779" {
		t.Fatalf("parse: %+v %v", o, err)
	}
	_, err = parseFlags([]string{"--branch-eni-cooldown=-1s"})
	for _, want := range []string{"--cluster-name is required", "--vpc-id is required", "--branch-eni-cooldown -1s must be positive"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad flags: %v, want %q", err, want)
		}
	}
}

// TestLeaderElectionByDefault: two replicas started without flags must not
// both be active (both would allocate branches for the same pods and each
// GC would delete the other's); --leader-elect=false turns it off for a
// single replica.
func TestLeaderElectionByDefault(t *testing.T) {
	o, err := parseFlags([]string{"--cluster-name=c1", "--vpc-id=vpc-1"})
	if err != nil || !o.leaderElect {
		t.Errorf("leader election by default: %v (err %v), want on", o.leaderElect, err)
	}
	o, err = parseFlags([]string{"--cluster-name=c1", "--vpc-id=vpc-1", "--leader-elect=false"})
	if err != nil || o.leaderElect {
		t.Errorf("--leader-elect=false: %v (err %v), want off", o.leaderElect, err)
	}
}
