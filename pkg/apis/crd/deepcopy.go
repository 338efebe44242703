package crd

// The generic halves of the hand-written DeepCopy methods: the nil-safe copy
// of an object and the item by item copy of a list. Each type still says how
// its own fields are copied.

// copier is a pointer to T that can deep-copy itself into another T.
type copier[T any] interface {
	*T
	DeepCopyInto(*T)
}

// Of returns a deep copy of in, or nil for nil.
func Of[T any, P copier[T]](in P) P {
	if in == nil {
		return nil
	}
	out := P(new(T))
	in.DeepCopyInto(out)
	return out
}

// Items deep-copies a list's items; nil stays nil.
func Items[T any, P copier[T]](in []T) []T {
	if in == nil {
		return nil
	}
	out := make([]T, len(in))
	for i := range in {
		P(&in[i]).DeepCopyInto(&out[i])
	}
	return out
}
