package resourcecontroller

import "fmt"

// VLAN ids of one trunk: 1..MaxVLAN, 0 is reserved. The largest branch
// limit of any instance type is 120, so the range never runs short first.
const MaxVLAN = 120

// vlanSet is the VLAN ids in use on one trunk. Its owner (the trunk's
// state) serialises access.
type vlanSet struct {
	used [MaxVLAN + 1]bool
}

// take returns the lowest free id.
func (s *vlanSet) take() (int, error) {
	for id := 1; id <= MaxVLAN; id++ {
		if !s.used[id] {
			s.used[id] = true
			return id, nil
		}
	}
	return 0, fmt.Errorf("all %d VLAN ids of the trunk are in use", MaxVLAN)
}

// mark records id as used (restart rebuild); an id out of range is an error.
func (s *vlanSet) mark(id int) error {
	if id < 1 || id > MaxVLAN {
		return fmt.Errorf("VLAN id %d is out of range 1-%d", id, MaxVLAN)
	}
	s.used[id] = true
	return nil
}

// has reports whether id is in use.
func (s *vlanSet) has(id int) bool { return id >= 1 && id <= MaxVLAN && s.used[id] }

func (s *vlanSet) free(id int) {
	if id >= 1 && id <= MaxVLAN {
		s.used[id] = false
	}
}
