// Package datastore is the in-memory address pool of one network card,
// with its checkpoint. ipamd keeps one Store per managed card.
//
// # Model
//
// ENIs (AddENI, RemoveENI, SetExcluded) hold CIDRs (AddCIDR, RemoveCIDR):
// /32 secondary IPv4 addresses, /28 IPv4 prefixes, IPv6 /80 prefixes (and
// /128s). ClassOf gives each CIDR a Mode; the Store hands out addresses only
// from CIDRs of its active Mode (Options.Mode, SetMode for the prefix
// delegation toggle). An address is held by a Key (network name, container
// id, interface name) with Metadata (pod namespace/name, interface count).
//
// # Operations and their cost (n = addresses, C = CIDRs, E = ENIs)
//
//	Assign(key, meta) (Assignment, error)     O(log n) + a shared checkpoint write; idempotent for a key already held
//	Unassign(key) (Assignment, error)         O(log n) + a shared checkpoint write; ErrUnknownPod ("datastore: unknown pod")
//	Lookup(key) (Assignment, bool)            O(1)
//	Stats() Stats                             O(1) (+ expiring cooldowns)
//	AddENI(ENI) error                         O(1)
//	RemoveENI(id, force) ([]Assignment, error)   O(CIDRs and addresses of that ENI)
//	SetExcluded(id, bool) error               O(log E)
//	AddCIDR(eniID, prefix) error              O(1) typically
//	RemoveCIDR(eniID, prefix, force) ([]Assignment, error)
//	SetMode(Mode) error / Mode() Mode         O(1)
//	ENIs() / ENI(id) / Snapshot() []ENIInfo   deep copies (Snapshot lists every address)
//	AllocatedIPs() []Assignment, Pending() []Allocation, DropPending(keep)
//	Restore(File, isLive) (RestoreResult, error), Load(isLive)
//
// The in-memory work of Assign and Unassign is O(log n); each of them (like
// every other change) then waits for a write of the whole checkpoint: O(live
// allocations + cooling addresses) to encode, plus the fsyncs of
// FileCheckpointer. Changes that arrive while a write is in flight share
// the next one (group commit), so concurrent ADDs and DELs cost one write
// per batch, not one each as upstream's do.
//
// Address choice is deterministic dense packing: the usable ENI with the
// most assigned addresses (then lowest device number), within it the CIDR
// of the active mode with the most assigned (then lowest address), within it
// the lowest free address. Candidate ENIs and CIDRs sit in indexed heaps and
// each CIDR keeps a lowest-free structure, so no operation on the
// assign/unassign path scans the pool. Whole ENIs and prefixes thus empty
// out and the pool planner (pkg/ipamd/pool) can give them back.
//
// # Cooldown
//
// An unassigned address cools for Options.CooldownPeriod (IP_COOLDOWN_PERIOD)
// before it is handed out again. Cooling addresses are counted apart
// (Stats.CoolingIPs) and are NOT available; the planner frees no CIDR or
// ENI holding one. The release time is persisted in the checkpoint, so
// cooldown survives a restart.
//
// # Checkpoint
//
// A change returns only once a write of File to the Checkpointer that
// holds it has finished. Changes join the open batch; a writer goroutine,
// started when a change finds none running and ending when no caller
// waits, copies the state under the lock and writes it with the lock
// released, while new changes collect in the next batch (commit.go). If a write fails, every Assign of its batch is undone
// before the store is seen again and each caller gets the error, so no pod
// is handed an address the disk does not know and no later write contains
// it; Restore keeps what it restored and returns the error. Unassign does
// NOT undo: on ErrCheckpoint the release has happened; the next successful
// write persists it. The address cools down as usual and the Assignment is
// returned along with the error. Should ipamd restart
// before then, the stale file still names the key, and Restore returns it
// as Stale once isLive says the pod is gone.
//
// FileCheckpointer writes upstream's JSON (version "vpc-cni-ipam/1")
// atomically (temp file, fsync, rename, directory fsync) at the path given
// (DefaultCheckpointPath, CheckpointPath for card N). Our only addition is an
// "unassigned" array of {ipv4|ipv6, unassignedTimestamp} which upstream's
// reader ignores; files written by upstream are read as they are, and the
// fields this version does not know, at the top level and in allocations
// (not inside "metadata"), are written back with the entry they came with
// (unknown.go).
//
// On start-up ipamd loads ENIs and CIDRs, then calls Load (or Restore) with
// an isLive predicate: live allocations in known CIDRs are restored, dead
// ones are returned as Stale, and live ones in no known CIDR are returned
// as Unknown and kept pending (still in the checkpoint) until AddCIDR adds
// their CIDR or DropPending forgets them — nothing is lost silently. Cooling
// addresses of an unknown CIDR likewise keep cooling, pending, until their
// cooldown ends (DropPending leaves them). A forced RemoveENI or RemoveCIDR
// leaves the allocations it evicts pending the same way (quarantine.go).
//
// # Errors
//
// Every error wraps a sentinel (ErrUnknownPod, ErrNoAvailableAddress,
// ErrUnknownENI, ErrDuplicateENI, ErrENIInUse, ErrUnknownCIDR,
// ErrDuplicateCIDR, ErrCIDRInUse, ErrInvalidCIDR, ErrInvalidArgument,
// ErrCheckpoint) and names the key, ENI, CIDR or path. An exhausted pool
// returns a *NoAvailableAddressError whose Reason says why (no CIDRs of the
// active mode, all N assigned, M cooling until T, all ENIs excluded).
//
// A Store is safe for concurrent use.
package datastore
