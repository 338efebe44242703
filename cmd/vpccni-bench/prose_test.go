package main

import "testing"

func TestProseFoldsWhiteSpaceNotArguments(t *testing.T) {
	got := prose(`Node 'warm'  (%d pods),
		then %s.`, 3, "a  b")
	if want := "Node 'warm' (3 pods), then a  b."; got != want {
		t.Fatalf("prose = %q, want %q", got, want)
	}
}
