package podnet

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/nldump"
	"golang.org/x/sys/unix"
)

// ErrBranchNotOwn says the VLAN link of a VLAN id does not carry the DEL's
// sandbox's mark (see TeardownMarkedBranch): nothing proves its table and
// rules are that sandbox's.
var ErrBranchNotOwn = errors.New("the VLAN link does not carry the sandbox's mark")

// TeardownMarkedBranch removes a branch-ENI pod's node-side state for a
// DEL that knows the VLAN id but not the pod's address, and found no host
// veth to tell it (see OwnBranchAddress): the pod's namespace is gone. A
// VLAN link carrying pod.Sandbox's mark (markVLANLink) proves the VLAN id
// and its table are still that sandbox's: an ADD of another sandbox on the
// VLAN id replaces the link with one of its own mark, and the VLAN lock
// keeps our ADDs out meanwhile. So every rule into the table is the
// pod's: the iif rules (strict mode) and the from-pod rules (standard
// mode), whose addresses' to-pod rules go too unless the address is
// routed through some link (then it is another pod's). The link goes as
// in TeardownBranch. vethNames are the names the pod's host veth may
// have. Without such a link it returns ErrBranchNotOwn and removes
// nothing; kept says, for the log, what a newer sandbox of the pod keeps.
func TeardownMarkedBranch(ctx context.Context, pod Pod, vlanID int, vethNames []string) (kept string, err error) {
	if err := CheckVLANID(vlanID); err != nil {
		return "", err
	}
	if len(vethNames) == 0 {
		return "", errors.New("no host veth name for the pod")
	}
	host := openHost()
	defer host.Close()
	lock := lockPod(ctx, pod.LockFile, vethNames[0], delLockWait)
	defer lock.unlock()
	vlock := lockVLAN(ctx, pod.LockFile, vlanID, delLockWait)
	defer vlock.unlock()
	own, err := ownVLANLink(host, vlanID, pod.Sandbox)
	if err != nil {
		return "", err
	}
	if own == nil {
		return "", fmt.Errorf("%s: %w", VLANLinkName(vlanID), ErrBranchNotOwn)
	}
	if !lock.held() {
		// A newer sandbox of the pod may be wiring this branch (its ADD
		// replaces the link only after the pod lock; see teardownOwnVLAN).
		veth, mark, err := firstOtherSandbox(host, pod.Sandbox, vethNames)
		if err != nil {
			return "", err
		}
		if mark != "" {
			return fmt.Sprintf("%s is marked %q and the pod lock was not taken: the branch may be that sandbox's", veth, mark), nil
		}
	}
	table := BranchTable(vlanID)
	var errs []error
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		errs = append(errs, deleteTableRules(host, table, fam), releaseVLAN(host, own, vlanID, fam, vethNames, nil))
	}
	return "", errors.Join(errs...)
}

// deleteTableRules deletes the iif and from-pod rules of one family into
// table, and the to-pod rule of each from-pod rule's address that no
// route in main leads to.
func deleteTableRules(h *netlink.Handle, table, fam int) error {
	rules, err := nldump.Retry(func() ([]netlink.Rule, error) {
		return h.RuleListFiltered(fam, &netlink.Rule{Table: table}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return fmt.Errorf("list rules into table %d: %w", table, err)
	}
	var errs []error
	for _, r := range rules {
		switch {
		case r.Priority == hostcontract.PriorityIIF && r.IifName != "":
			errs = append(errs, deleteRules(h, iifRule(r.IifName, table, fam)))
		case r.Priority == hostcontract.PriorityFromPod && r.Src != nil:
			pod := hostPrefix(r.Src.IP)
			errs = append(errs, deleteRules(h, fromPodRule(pod, table)))
			dev, err := routedElsewhere(h, pod, "")
			switch {
			case err != nil:
				errs = append(errs, err)
			case dev == "":
				errs = append(errs, deleteRules(h, toPodRule(pod)))
			}
		}
	}
	return errors.Join(errs...)
}

// MarkedVLANID returns the VLAN id of the VLAN link carrying sandbox's
// mark, 0 when there is none (or more than one): a DEL whose prevResult
// does not say whether, or on which VLAN id, the pod has a branch ENI
// learns it from the node.
func MarkedVLANID(sandbox string) (int, error) {
	mark := SandboxMark(sandbox)
	if mark == "" {
		return 0, nil
	}
	host := openHost()
	defer host.Close()
	links, err := nldump.Retry(host.LinkList)
	if err != nil {
		return 0, fmt.Errorf("list links: %w", err)
	}
	found := 0
	for _, l := range links {
		a := l.Attrs()
		id, err := strconv.Atoi(strings.TrimPrefix(a.Name, vlanLinkPrefix))
		if a.Alias != mark || !strings.HasPrefix(a.Name, vlanLinkPrefix) || err != nil || CheckVLANID(id) != nil {
			continue
		}
		if found != 0 {
			return 0, nil
		}
		found = id
	}
	return found, nil
}
