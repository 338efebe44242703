//go:build amd64 || arm64

package entry

// stackFrame is growStack's frame: with the caller's few frames it fits a
// 128 KiB stack, the size a plugin's main goroutine reaches anyway once it
// calls into vishvananda/netlink, whose receive path keeps a 64 KiB buffer
// on the stack.
const stackFrame = 120 << 10

// growStack makes the calling goroutine's stack big enough for the whole
// command at once, while only a few frames are on it. A goroutine starts
// with 2 KiB and doubles its stack on demand, copying it and adjusting
// every frame (which reads the functions' stack maps, faulting in their
// pages): an aws-cni ADD did that four times, 2 → 4 → 8 → 16 → 128 KiB, the
// last at a deep point (bench/README.md, figure 1). Written in assembly so
// that its frame is reserved and not zeroed: touching 120 KiB would fault
// in 30 pages for nothing.
func growStack()
