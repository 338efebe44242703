package datastore

// iheap is a binary min-heap whose elements know their own position (via
// setIdx), so an element can be removed or re-ordered in O(log n) after its
// key changed. The candidate indexes of the store are built from it.
type iheap[T any] struct {
	items  []T
	less   func(a, b T) bool
	setIdx func(T, int) // -1 when the element leaves the heap
}

func (h *iheap[T]) len() int { return len(h.items) }

func (h *iheap[T]) min() (T, bool) {
	if len(h.items) == 0 {
		var zero T
		return zero, false
	}
	return h.items[0], true
}

func (h *iheap[T]) push(x T) {
	h.items = append(h.items, x)
	i := len(h.items) - 1
	h.setIdx(x, i)
	h.up(i)
}

func (h *iheap[T]) remove(i int) {
	n := len(h.items) - 1
	x := h.items[i]
	if i != n {
		h.swap(i, n)
	}
	var zero T
	h.items[n] = zero
	h.items = h.items[:n]
	h.setIdx(x, -1)
	if i != n {
		if !h.down(i) {
			h.up(i)
		}
	}
}

// fix restores order after the key of the element at i changed.
func (h *iheap[T]) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h *iheap[T]) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.setIdx(h.items[i], i)
	h.setIdx(h.items[j], j)
}

func (h *iheap[T]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(h.items[i], h.items[p]) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *iheap[T]) down(i0 int) bool {
	i, n := i0, len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && h.less(h.items[r], h.items[l]) {
			j = r
		}
		if !h.less(h.items[j], h.items[i]) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}

// offHeap is a plain min-heap of offsets inside a CIDR (released addresses
// below the CIDR's fresh-offset cursor).
type offHeap []uint64

func (h *offHeap) push(x uint64) {
	*h = append(*h, x)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if s[p] <= s[i] {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *offHeap) pop() uint64 {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && s[r] < s[l] {
			j = r
		}
		if s[i] <= s[j] {
			break
		}
		s[i], s[j] = s[j], s[i]
		i = j
	}
	*h = s
	return top
}
