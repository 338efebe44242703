package k8s

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
)

// A note longer than the API server's 1024 bytes is cut to fit. Cut in the
// middle of a character (an ENIConfig or subnet name quoted in an error
// can hold any), the broken bytes must not reach the server: encoded as
// replacement characters they take more room than they had and the server
// refused the whole event, so the warning was lost.
func TestEventNoteCutAtCharacterBoundary(t *testing.T) {
	env, admin := testEnv(t)
	const node = "event-note-node"
	createNode(t, admin, node, nil, nil)
	awsNode := createPod(t, admin, "kube-system", "aws-node-event-note", node)
	c := newClient(t, env, Config{NodeName: node, PodName: awsNode.Name})
	note := strings.Repeat("a", maxNoteLen-1) + strings.Repeat("é", 4) // é is 2 bytes: the cut falls inside one
	c.Eventf(context.Background(), corev1.EventTypeWarning, ReasonInvalidENIConfig, "%s", note)
	evs := eventsFor(t, admin, awsNode, ReasonInvalidENIConfig)
	if len(evs) != 1 {
		t.Fatalf("want the event recorded, got %d events", len(evs))
	}
	if got := evs[0].Note; len(got) > maxNoteLen || !utf8.ValidString(got) || !strings.HasPrefix(note, got) {
		t.Errorf("note of %d bytes (valid UTF-8 %t) is not a prefix of the message within %d bytes", len(got), utf8.ValidString(got), maxNoteLen)
	}
}
