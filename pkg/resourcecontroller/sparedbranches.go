package resourcecontroller

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
)

// The start-up sweep never deletes a branch a running pod's annotation
// names on a Node of the branch's instance. A Node that looks unmanaged
// for good may be one registered again for its live instance whose
// CNINode was made again without SecurityGroupsForPods: ipamd declares
// that feature only until a trunk is attached, so it never comes back,
// and once DeinitDelay was over the sweep deleted the running pods'
// branches. After a restart nothing tells that node from one that lost
// SGP for good (on EKS a restarted controller deletes neither), so the
// running pods keep their branches; each is deleted at the first GC pass
// after its pod has ended.

// podClaim is a branch the sweep spared for a running pod.
type podClaim struct {
	eni string
	pod types.NamespacedName
	uid types.UID
}

// sparedBranches are the claims the last sweep spared.
type sparedBranches struct {
	mu     sync.Mutex
	claims []podClaim
}

func (s *sparedBranches) set(claims []podClaim) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claims = claims
}

func (s *sparedBranches) get() []podClaim {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claims
}

// runningClaims lists the branches the annotations of pods, those of one
// node, name while the pod has not completed.
func runningClaims(pods []corev1.Pod) []podClaim {
	var out []podClaim
	for i := range pods {
		p := &pods[i]
		if podDone(p) || p.Annotations[PodENIAnnotation] == "" {
			continue
		}
		enis, err := DecodeAnnotation(p.Annotations[PodENIAnnotation])
		if err != nil {
			continue
		}
		for _, e := range enis {
			out = append(out, podClaim{eni: e.ENIID, pod: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}, uid: p.UID})
		}
	}
	return out
}

// spare removes from lost the branches claims name and returns those
// claims.
func spare(lost map[string][]BranchENI, claims []podClaim) []podClaim {
	byENI := make(map[string]podClaim, len(claims))
	for _, cl := range claims {
		byENI[cl.eni] = cl
	}
	var spared []podClaim
	for inst, bs := range lost {
		left := bs[:0]
		for _, b := range bs {
			if cl, ok := byENI[b.ENIID]; ok {
				spared = append(spared, cl)
				continue
			}
			left = append(left, b)
		}
		if len(left) == 0 {
			delete(lost, inst)
		} else {
			lost[inst] = left
		}
	}
	return spared
}

// sparedPodEnded reports whether a pod the last sweep spared a branch for
// has ended (gone, completed, or another pod of its name): the sweep
// runs again for its branch.
func (c *Controller) sparedPodEnded(ctx context.Context) bool {
	for _, cl := range c.spared.get() {
		var p corev1.Pod
		if err := c.c.Get(ctx, cl.pod, &p); err != nil {
			if ctrl.IgnoreNotFound(err) == nil {
				return true
			}
			continue // looked at again at the next pass
		}
		if p.UID != cl.uid || podDone(&p) {
			return true
		}
	}
	return false
}
