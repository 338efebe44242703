// Package ipamd is the node daemon's engine. IPAM (ipamd.go) is only the wiring of its parts, run.go their loops:
//
//	gRPC (server.go, door.go) ─► handout (handout.go: AssignPod/ReleasePod, the wait) ─► cards' datastores
//	                          └► branchWait (trunkwait.go: trunk ENI, pod annotation)
//	poolCycler (engine.go) ─► per card poolManager (poolmanager.go, engine.go, actions.go, eni.go: datastore, cooldowns,
//	  back-off, actions) ─► planner (package pool, pure), book.go, subnets.go, imds.go, EC2/IMDS (deps.go)
//	reconcile.go, nodeRefresher (refresh.go), adopt/restore (init.go, recover.go: restorer), cniNodeFeatures (features.go)
//	leakSweeper (leaked.go), orphanSweeper (orphans.go), observer (metrics.go), cpHealth (health.go)
//	Kubernetes, host networking, subnet and leaked-ENI listers may be absent: null objects (absent.go)
//
// Deliberate differences from upstream are listed in docs/compatibility.md.
package ipamd
