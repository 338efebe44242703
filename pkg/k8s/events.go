package k8s

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Event reasons ipamd records.
const (
	ReasonMissingIAMPermissions = "MissingIAMPermissions" // EC2 UnauthorizedOperation
	ReasonENIConfigNotFound     = "ENIConfigNotFound"
	ReasonInvalidENIConfig      = "InvalidENIConfig"
)

// reportingController is the events.k8s.io/v1 reporter name upstream uses.
const reportingController = "aws-node"

// maxNoteLen is the API server's limit on events.k8s.io/v1 notes.
const maxNoteLen = 1024

// maxDedupKeys bounds the memory of event deduplication.
const maxDedupKeys = 256

type eventDedup struct {
	mu     sync.Mutex
	window time.Duration
	last   map[string]time.Time
}

// allow reports whether key was not sent within the window. It does not
// mark it: only a send that reached the API server does (sent), so a
// failed send is retried next time rather than hidden for the window.
func (d *eventDedup) allow(key string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.last[key]
	return !ok || now.Sub(t) >= d.window
}

// sent marks key as delivered at now.
func (d *eventDedup) sent(key string, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	// Messages carry details (ids, errors): keep the map bounded.
	if len(d.last) >= maxDedupKeys {
		for k, t := range d.last {
			if now.Sub(t) >= d.window {
				delete(d.last, k)
			}
		}
	}
	if len(d.last) < maxDedupKeys {
		d.last[key] = now
	}
}

// Eventf records an events.k8s.io/v1 event about the aws-node pod (or this
// node when no pod name is configured). eventType is corev1.EventTypeNormal
// or corev1.EventTypeWarning. Identical events within EventDedupWindow are
// dropped. Failures are logged, not returned: an event is never worth
// failing the operation that prompted it.
func (c *Client) Eventf(ctx context.Context, eventType, reason, format string, args ...any) {
	note := fmt.Sprintf(format, args...)
	if len(note) > maxNoteLen {
		// Cut at a character boundary: broken bytes are sent as U+FFFD,
		// which is longer, and the server would refuse the event.
		note = strings.ToValidUTF8(note[:maxNoteLen], "")
	}
	now := time.Now()
	key := eventType + "\x00" + reason + "\x00" + note
	if !c.events.allow(key, now) {
		return
	}
	regarding, ns := c.eventTarget(ctx)
	ev := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      regarding.Name + "." + strconv.FormatInt(now.UnixNano(), 16),
			Namespace: ns,
		},
		EventTime:           metav1.NewMicroTime(now),
		ReportingController: reportingController,
		ReportingInstance:   reportingController + "-" + c.cfg.NodeName,
		Action:              reason,
		Reason:              reason,
		Regarding:           regarding,
		Note:                note,
		Type:                eventType,
	}
	if err := c.api.create(ctx, eventsRes, ns, ev); err != nil {
		c.log.Warn("could not record kubernetes event", "reason", reason, "note", note, "err", err)
		return
	}
	c.events.sent(key, now)
}

func (c *Client) eventTarget(ctx context.Context) (corev1.ObjectReference, string) {
	if c.cfg.PodName == "" {
		return corev1.ObjectReference{Kind: "Node", APIVersion: "v1", Name: c.cfg.NodeName}, metav1.NamespaceDefault
	}
	ref := corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: c.cfg.PodNamespace, Name: c.cfg.PodName}
	// The aws-node pod runs on this node, so it is in the pod cache.
	if c.ready() == nil {
		if p, err := c.Pod(ctx, ref.Namespace, ref.Name); err == nil {
			ref.UID = p.UID
		}
	}
	return ref, c.cfg.PodNamespace
}
