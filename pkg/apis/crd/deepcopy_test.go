package crd

import (
	"reflect"
	"testing"
)

type box struct{ vals []int }

func (in *box) DeepCopyInto(out *box) {
	*out = *in
	out.vals = append([]int(nil), in.vals...)
}

func TestOfCopiesDeepAndKeepsNil(t *testing.T) {
	if got := Of[box]((*box)(nil)); got != nil {
		t.Fatalf("Of(nil) = %v, want nil", got)
	}
	in := &box{vals: []int{1, 2}}
	out := Of(in)
	if out == in || !reflect.DeepEqual(out, in) {
		t.Fatalf("Of = %p %v, want an equal copy of %p %v", out, out, in, in)
	}
	out.vals[0] = 9
	if in.vals[0] != 1 {
		t.Fatal("the copy shares the original's slice")
	}
}

func TestItemsCopiesEachItem(t *testing.T) {
	if got := Items[box]([]box(nil)); got != nil {
		t.Fatalf("Items(nil) = %v, want nil", got)
	}
	if got := Items([]box{}); got == nil || len(got) != 0 {
		t.Fatalf("Items(empty) = %#v, want an empty non-nil slice", got)
	}
	in := []box{{vals: []int{1}}, {vals: []int{2, 3}}}
	out := Items(in)
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("Items = %v, want %v", out, in)
	}
	out[1].vals[0] = 9
	if in[1].vals[0] != 2 {
		t.Fatal("an item of the copy shares the original's slice")
	}
}
