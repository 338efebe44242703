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
