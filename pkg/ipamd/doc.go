// Package ipamd is the node daemon's engine. IPAM (ipamd.go) only wires its parts; run.go runs their loops:
//
//	gRPC (server.go, door.go) ─► handout (handout.go: AssignPod/ReleasePod, the wait) ─► cardSet (cards.go)
//	poolCycler (engine.go) ─► each card's poolManager (poolmanager.go, engine.go, actions.go, eni.go): its datastore,
//	    cooldowns, back-off and actions ─► planner (package pool, pure); eniBook (book.go), subnetFinder, imdsWatch
//	Init (init.go) ─► adopter (adopt.go, tags.go), hostSync (hostsync.go, hoststart.go), restorer (recover.go)
//	reconciler (reconcile.go), nodeRefresher (refresh.go), branchWait (trunkwait.go), cniNodeFeatures (features.go)
//	leakSweeper (leaked.go), orphanSweeper (orphans.go), observer (metrics.go), cpHealth (health.go)
//	EC2/IMDS/host/Kubernetes (deps.go); absent collaborators are null objects (absent.go)
//
// Deliberate differences from upstream are listed in docs/compatibility.md.
package ipamd
