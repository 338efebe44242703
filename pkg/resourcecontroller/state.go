package resourcecontroller

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// ErrAtCapacity: the node's branches in use plus those cooling down fill its
// branch limit.
var ErrAtCapacity = errors.New("branch ENI limit reached")

// branch is one branch ENI the controller holds for a pod.
type branch struct {
	BranchENI
	// releasedAt is when the branch was released; it may be deleted once
	// the cool-down in force at that check has passed (zero: at once), so
	// a changed cool-down applies to queued branches too, as on EKS.
	releasedAt time.Time
	retries    int
	// gen is the trunk the branch was taken from for deletion (due).
	gen uint64
}

// trunk is the controller's view of one node's trunk ENI. Its fields are
// guarded by registry.mu.
type trunk struct {
	// gen tells this trunk state from an earlier or later one of the same
	// node (a Node deleted and registered again): work begun on one must
	// not land in another (registry.put).
	gen                       uint64
	node, instanceID, trunkID string
	subnetID, subnetCIDR      string
	groups                    []string // the node's groups, for pods no policy matched
	limit                     int

	vlans    vlanSet
	inflight map[int]bool // VLANs of branches being made right now
	pods     map[types.UID][]branch
	keys     map[types.UID]string // uid → namespace/name
	cooling  []branch             // the node's delete queue, in releasedAt order
	// abandoned are the branches the delete queue gave up on (eni id →
	// VLAN): their VLANs stay taken until the GC sees them gone.
	abandoned map[string]int
	// gone: the Node was seen deleted; the state waits DeinitDelay for
	// its pods' releases (nodegone.go) and takes no new pod.
	gone bool
}

func newTrunk() *trunk {
	return &trunk{inflight: map[int]bool{}, pods: map[types.UID][]branch{}, keys: map[types.UID]string{}, abandoned: map[string]int{}}
}

// registry owns every node's trunk state. All methods are safe for
// concurrent use; EC2 and Kubernetes calls happen outside the lock.
type registry struct {
	mu      sync.Mutex
	trunks  map[string]*trunk // by node name
	lastGen uint64
	// loose are branches whose delete failed after their trunk state was
	// gone (the Node deleted): no node queue or GC pass covers them, and
	// the node's cleanup has run, so they are retried here (gc.go).
	loose []BranchENI
}

func newRegistry() *registry { return &registry{trunks: map[string]*trunk{}} }

// TrunkInfo is a copy of what pod work needs from a trunk.
type TrunkInfo struct {
	Node, InstanceID, TrunkID, SubnetID, SubnetCIDR string
	Groups                                          []string
	Limit                                           int
	// Gen is the trunk state this copy was taken from (trunk.gen).
	Gen uint64
	// Gone: its Node was seen deleted (trunk.gone).
	Gone bool
}

// trunkAt names one trunk state: the node's, while it is generation gen.
type trunkAt struct {
	node string
	gen  uint64
}

func (i TrunkInfo) at() trunkAt { return trunkAt{node: i.Node, gen: i.Gen} }

// current returns the node's trunk state if it is still at's; the caller
// holds r.mu.
func (r *registry) current(at trunkAt) (*trunk, bool) {
	t, ok := r.trunks[at.node]
	if !ok || t.gen != at.gen {
		return nil, false
	}
	return t, true
}

func (r *registry) info(node string) (TrunkInfo, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.trunks[node]
	if !ok {
		return TrunkInfo{}, false
	}
	return TrunkInfo{Node: t.node, InstanceID: t.instanceID, TrunkID: t.trunkID, SubnetID: t.subnetID,
		SubnetCIDR: t.subnetCIDR, Groups: slices.Clone(t.groups), Limit: t.limit, Gen: t.gen, Gone: t.gone}, true
}

// setGone marks whether the node's trunk state belongs to a deleted Node
// and names that state; false when the node has none.
func (r *registry) setGone(node string, gone bool) (trunkAt, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.trunks[node]
	if !ok {
		return trunkAt{node: node}, false
	}
	t.gone = gone
	return trunkAt{node: node, gen: t.gen}, true
}

func (r *registry) put(t *trunk) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastGen++
	t.gen = r.lastGen
	r.trunks[t.node] = t
}

func (r *registry) drop(node string) *trunk {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.trunks[node]
	delete(r.trunks, node)
	return t
}

// dropAt removes the node's trunk state if it is still at's.
func (r *registry) dropAt(at trunkAt) *trunk {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.current(at)
	if !ok {
		return nil
	}
	delete(r.trunks, at.node)
	return t
}

// holds reports whether uid already has branches on node.
func (r *registry) holds(node string, uid types.UID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.trunks[node]
	return ok && len(t.pods[uid]) > 0
}

// held returns the branches uid holds on node.
func (r *registry) held(node string, uid types.UID) []BranchENI {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.trunks[node]
	if !ok {
		return nil
	}
	out := make([]BranchENI, 0, len(t.pods[uid]))
	for _, b := range t.pods[uid] {
		out = append(out, b.BranchENI)
	}
	return out
}

// reserve takes n VLAN ids for a pod, or fails with ErrAtCapacity when the
// branches in use, cooling, being made or given up would pass the limit.
func (r *registry) reserve(at trunkAt, n int) ([]int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	node := at.node
	t, ok := r.current(at)
	if !ok {
		return nil, fmt.Errorf("node %s has no trunk ENI", node)
	}
	// A given-up branch still exists in EC2 and holds its VLAN: it counts
	// until the GC has deleted it.
	used := len(t.cooling) + len(t.inflight) + len(t.abandoned)
	for _, bs := range t.pods {
		used += len(bs)
	}
	if used+n > t.limit {
		return nil, fmt.Errorf("%w on node %s: %d of %d branch ENIs are in use or cooling down", ErrAtCapacity, node, used, t.limit)
	}
	ids := make([]int, 0, n)
	for range n {
		id, err := t.vlans.take()
		if err != nil {
			for _, v := range ids {
				t.vlans.free(v)
				delete(t.inflight, v)
			}
			return nil, err
		}
		t.inflight[id] = true
		ids = append(ids, id)
	}
	return ids, nil
}

// unreserve frees VLANs whose branch was never made (or was already
// deleted again).
func (r *registry) unreserve(at trunkAt, vlans []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.current(at); ok {
		for _, v := range vlans {
			t.vlans.free(v)
			delete(t.inflight, v)
		}
	}
}

// handBack puts branches at the front of the delete queue of the trunk
// state at, due at once, their VLANs taken until deleted; false, nothing
// done, when that state is gone.
func (r *registry) handBack(at trunkAt, bs []BranchENI) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.current(at)
	if !ok {
		return false
	}
	front := make([]branch, 0, len(bs))
	for _, b := range bs {
		delete(t.inflight, b.VlanID)
		front = append(front, branch{BranchENI: b})
	}
	t.cooling = slices.Insert(t.cooling, 0, front...)
	return true
}

// record stores a pod's new branches (their VLANs stop being in flight).
// It is false when the trunk state they were reserved in is gone or its
// Node was deleted meanwhile: then nothing will use them and deleting
// them is the caller's.
func (r *registry) record(at trunkAt, uid types.UID, key string, bs []BranchENI) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.current(at)
	if !ok || t.gone {
		return false
	}
	for _, b := range bs {
		delete(t.inflight, b.VlanID)
		t.pods[uid] = append(t.pods[uid], branch{BranchENI: b})
	}
	t.keys[uid] = key
	return true
}

// forget removes a pod's branches without cooling them (their deletion
// is the caller's).
func (r *registry) forget(node string, uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.trunks[node]; ok {
		delete(t.pods, uid)
		delete(t.keys, uid)
	}
}

// release moves a pod's branches to the end of the cool-down queue.
func (r *registry) release(node string, uid types.UID, at time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.trunks[node]
	if !ok {
		return 0
	}
	bs := t.pods[uid]
	for _, b := range bs {
		b.releasedAt = at
		t.cooling = append(t.cooling, b)
	}
	delete(t.pods, uid)
	delete(t.keys, uid)
	return len(bs)
}

// podOf returns the uid held for namespace/name on any node.
func (r *registry) podsByKey(key string) []podRef {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []podRef
	for node, t := range r.trunks {
		for uid, k := range t.keys {
			if k == key {
				out = append(out, podRef{node: node, uid: uid})
			}
		}
	}
	return out
}

type podRef struct {
	node string
	uid  types.UID
}

// heldPods lists the pods holding branches on node.
func (r *registry) heldPods(node string) []podRef {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.trunks[node]
	if !ok {
		return nil
	}
	out := make([]podRef, 0, len(t.pods))
	for uid := range t.pods {
		out = append(out, podRef{node: node, uid: uid})
	}
	return out
}

// hasDue reports whether node has cooled branches whose time has come
// under cooldown.
func (r *registry) hasDue(node string, now time.Time, cooldown time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.trunks[node]
	return ok && len(t.cooling) > 0 && isDue(t.cooling[0], now, cooldown)
}

func isDue(b branch, now time.Time, cooldown time.Duration) bool {
	return b.releasedAt.IsZero() || !now.Before(b.releasedAt.Add(cooldown))
}

// due pops the cooled branches of node whose time has come under
// cooldown.
func (r *registry) due(node string, now time.Time, cooldown time.Duration) []branch {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.trunks[node]
	if !ok {
		return nil
	}
	i := 0
	for i < len(t.cooling) && isDue(t.cooling[i], now, cooldown) {
		i++
	}
	out := slices.Clone(t.cooling[:i])
	t.cooling = slices.Delete(t.cooling, 0, i)
	// The deletion is in flight: keep the VLANs marked until it succeeds.
	for i := range out {
		out[i].gen = t.gen
		t.inflight[out[i].VlanID] = true
	}
	return out
}

// deleted frees a deleted branch's VLAN; failed puts it back at the front
// to be retried, up to maxDeleteRetries, after which it is left for GC.
func (r *registry) deleted(node string, b branch, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.current(trunkAt{node: node, gen: b.gen})
	if !ok {
		if err != nil {
			r.loose = append(r.loose, b.BranchENI)
		}
		return
	}
	delete(t.inflight, b.VlanID)
	if err == nil {
		t.vlans.free(b.VlanID)
		return
	}
	b.retries++
	if b.retries < maxDeleteRetries {
		b.releasedAt = time.Time{}
		t.cooling = slices.Insert(t.cooling, 0, b)
		return
	}
	t.abandoned[b.ENIID] = b.VlanID
}

// abandonedOf copies the given-up branches of node (eni id → VLAN) and
// names the trunk state they belong to.
func (r *registry) abandonedOf(node string) (trunkAt, map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.trunks[node]
	if !ok {
		return trunkAt{node: node}, nil
	}
	return trunkAt{node: node, gen: t.gen}, maps.Clone(t.abandoned)
}

// reclaim frees the VLAN of a given-up branch that is gone from EC2.
func (r *registry) reclaim(at trunkAt, eniID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.current(at)
	if !ok {
		return
	}
	if vlan, ok := t.abandoned[eniID]; ok {
		t.vlans.free(vlan)
		delete(t.abandoned, eniID)
	}
}

const maxDeleteRetries = 3

// takeLoose pops the branches of gone trunk states still to delete.
func (r *registry) takeLoose() []BranchENI {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.loose
	r.loose = nil
	return out
}

// addLoose puts back branches of gone trunk states whose delete failed.
func (r *registry) addLoose(bs []BranchENI) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.loose = append(r.loose, bs...)
}

// trunkHeld reports whether a node's trunk is trunkID.
func (r *registry) trunkHeld(trunkID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.trunks {
		if t.trunkID == trunkID {
			return true
		}
	}
	return false
}

// nodes lists the nodes with a trunk.
func (r *registry) nodes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.trunks))
	for n := range r.trunks {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// known reports whether eniID is held (in use or cooling) or its VLAN is
// being worked on, so GC must leave it alone.
func (r *registry) known(node, eniID string, vlan int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.trunks[node]
	if !ok {
		return true
	}
	if t.inflight[vlan] {
		return true
	}
	for _, b := range t.cooling {
		if b.ENIID == eniID {
			return true
		}
	}
	for _, bs := range t.pods {
		for _, b := range bs {
			if b.ENIID == eniID {
				return true
			}
		}
	}
	return false
}
