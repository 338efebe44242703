package resourcecontroller

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/k8s"
)

// Event reasons, EKS's names so existing alerts and runbooks still match.
const (
	ReasonSecurityGroupRequested = "SecurityGroupRequested"
	ReasonResourceAllocated      = "ResourceAllocated"
	ReasonBranchAllocationFailed = "BranchAllocationFailed"
	ReasonBranchAnnotationFailed = "BranchENIAnnotationFailed"
	ReasonInvalidAnnotation      = "InvalidBranchAnnotation"
	ReasonNodeTrunkInitiated     = "NodeTrunkInitiated"
	ReasonNodeTrunkFailedInit    = "NodeTrunkFailedInit"
	ReasonTrunkCreationFailed    = "TrunkENICreationFailed"
	ReasonUnsupported            = "Unsupported"
	// On a CNINode whose deletion was not seen within cninodeDeletionWait
	// of its finalizer's removal, and on a Node whose CNINode could not be
	// made again (cninode.go).
	ReasonCNINodeDeletionFailed = "CNINodeDeletionFailed"
	ReasonCNINodeCreationFailed = "CNINodeCreationFailed"
)

// eventSource is the component name on every event.
const eventSource = "vpc-resource-controller"

// recorder writes core/v1 Events (what `kubectl describe` shows). A failed
// write is logged, never returned: events are for users, not control flow.
type recorder struct {
	c   client.Client
	log *slog.Logger
}

func (r recorder) event(ctx context.Context, obj client.Object, kind, typ, reason, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	now := metav1.NewTime(time.Now())
	ns := obj.GetNamespace()
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	uid := obj.GetUID()
	if kind == "Node" {
		uid = "" // as EKS: kubectl describe node finds node events by name
	}
	apiVersion := "v1"
	if kind == "CNINode" {
		apiVersion = k8s.CNINodeGroupVersion.String()
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: obj.GetName() + ".", Namespace: ns},
		InvolvedObject: corev1.ObjectReference{
			Kind: kind, APIVersion: apiVersion, Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: uid,
		},
		Reason: reason, Message: msg, Type: typ,
		Source:         corev1.EventSource{Component: eventSource},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: eventSource, ReportingInstance: eventSource,
	}
	if err := r.c.Create(ctx, ev); err != nil {
		r.log.Warn("could not record event", "object", obj.GetNamespace()+"/"+obj.GetName(), "reason", reason, "message", msg, "err", err)
	}
	lvl := slog.LevelInfo
	if typ == corev1.EventTypeWarning {
		lvl = slog.LevelWarn
	}
	r.log.Log(ctx, lvl, msg, "reason", reason, "object", obj.GetNamespace()+"/"+obj.GetName())
}
