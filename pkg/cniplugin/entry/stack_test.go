package entry

import "testing"

// TestGrowStackThenDeepCalls: after growStack a goroutine still runs calls
// deeper than the frame it reserved (the stack keeps growing on demand).
func TestGrowStackThenDeepCalls(t *testing.T) {
	done := make(chan int)
	go func() {
		growStack()
		done <- deep(4000)
	}()
	if got := <-done; got != 4000 {
		t.Fatalf("deep(4000) = %d", got)
	}
}

//go:noinline
func deep(n int) int {
	var pad [64]byte
	pad[n%64] = 1
	if n == 0 {
		return int(pad[0]) - 1
	}
	return deep(n-1) + int(pad[n%64])
}
