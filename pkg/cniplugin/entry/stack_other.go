//go:build !amd64 && !arm64

package entry

// growStack is a no-op where there is no assembly for it: the stack grows
// on demand as usual.
func growStack() {}
