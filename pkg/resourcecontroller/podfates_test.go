package resourcecontroller

import (
	"errors"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A pod is told once the last of its taken branches is done, with the
// ones EC2 refused; a branch no pod owns, or one not taken, tells no one.
func TestPodFates(t *testing.T) {
	a := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a"}}
	b := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "b"}}
	owner := map[string]*corev1.Pod{"eni-a1": a, "eni-a2": a, "eni-b1": b, "eni-b-untaken": b}
	f := newPodFates([]BranchENI{{ENIID: "eni-a1"}, {ENIID: "eni-b1"}, {ENIID: "eni-a2"}, {ENIID: "eni-cooling"}}, owner)
	refused := errors.New("refused")
	type told struct {
		pod    string
		ids    []string
		failed []BranchENI
	}
	var got []told
	for _, step := range []struct {
		id  string
		err error
	}{{"eni-a1", refused}, {"eni-b1", nil}, {"eni-cooling", nil}, {"eni-a2", nil}} {
		if p, ids, failed, last := f.done(BranchENI{ENIID: step.id}, step.err); last {
			got = append(got, told{p.Name, ids, failed})
		}
	}
	want := []told{{"b", []string{"eni-b1"}, nil}, {"a", []string{"eni-a1", "eni-a2"}, []BranchENI{{ENIID: "eni-a1"}}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("told %+v, want %+v", got, want)
	}
}
