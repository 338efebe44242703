package localvpc

import (
	"fmt"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// checkNodeNames refuses a scenario in which two instances would be the
// same node: a node is its Name tag or else its instance id, and Node,
// the demo and `localvpc up` find nodes by either, so a repeated name
// would silently pick one of them.
func checkNodeNames(sc vpcsim.Scenario) error {
	byName := map[string]string{} // node name → instance it names
	for i, inst := range sc.Instances {
		who := fmt.Sprintf("instances[%d]", i)
		if inst.ID != "" {
			who += " (" + inst.ID + ")"
		}
		for _, name := range []string{inst.Tags["Name"], inst.ID} {
			if name == "" {
				continue
			}
			if other, ok := byName[name]; ok && other != who {
				return fmt.Errorf("scenario %s: node name %q is already used by %s", who, name, other)
			}
			byName[name] = who
		}
	}
	return nil
}
