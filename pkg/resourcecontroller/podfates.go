package resourcecontroller

import (
	corev1 "k8s.io/api/core/v1"
)

// podFates gathers, pod by pod, what became of the branches a job deletes
// one after another, so that each running pod is told once its own
// deletes are done: told at the job's end, a pod whose branch went first
// waited for every other delete of its node (seconds each when EC2 is
// slow), its annotation naming a branch already gone.
type podFates struct {
	owner  map[string]*corev1.Pod // branch ENI id → the pod it is told to
	left   map[*corev1.Pod]int
	ids    map[*corev1.Pod][]string
	failed map[*corev1.Pod][]BranchENI
}

// newPodFates follows the branches of taken that owner gives a pod.
func newPodFates(taken []BranchENI, owner map[string]*corev1.Pod) *podFates {
	f := &podFates{owner: owner, left: map[*corev1.Pod]int{}, ids: map[*corev1.Pod][]string{}, failed: map[*corev1.Pod][]BranchENI{}}
	for _, b := range taken {
		if p := owner[b.ENIID]; p != nil {
			f.left[p]++
			f.ids[p] = append(f.ids[p], b.ENIID)
		}
	}
	return f
}

// done records the outcome of b's delete (err nil: deleted) and, once it
// was the last of its pod's, returns the pod with its branch ids and those
// whose delete failed.
func (f *podFates) done(b BranchENI, err error) (pod *corev1.Pod, ids []string, failed []BranchENI, last bool) {
	p := f.owner[b.ENIID]
	if p == nil || f.left[p] == 0 {
		return nil, nil, nil, false
	}
	if err != nil {
		f.failed[p] = append(f.failed[p], b)
	}
	f.left[p]--
	if f.left[p] > 0 {
		return nil, nil, nil, false
	}
	return p, f.ids[p], f.failed[p], true
}
