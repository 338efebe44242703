// Package ipamd is the node daemon's engine. Its parts, each the one owner
// of its state (IPAM itself is only their wiring, run.go their loops):
//
//	gRPC (server.go, door.go) ─► hand-out (handout.go: AssignPod/ReleasePod, the wait for an address)
//	                                 │ datastores            ▲ wakes waiters
//	pool manager (engine.go) ─► card (card.go: datastore, cooldowns, back-off) ─► planner (package pool, pure)
//	   │ executes actions: eni.go (ENI life cycle), book.go (what EC2 was told)
//	reconcile.go, refresh.go, leaked.go, orphans.go ─► nodeState (node.go), EC2 and IMDS (deps.go)
//	Kubernetes, host networking, subnet and leaked-ENI listers may be absent: null objects (absent.go)
//
// Deliberate differences from upstream are listed in docs/compatibility.md.
package ipamd
