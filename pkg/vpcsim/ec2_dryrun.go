package vpcsim

// A dry run answers as the request would be answered up to the point where
// it would change something: the permission, then the request's parameters
// (required, well-formed), then that every resource it names exists; only
// then DryRunOperation. Checks that depend on the resources' state (limits,
// attachment state, group membership of a VPC, duplicates) are not made
// (docs/compatibility.md, "vpcsim: fidelity to EC2").

// idRef is one id parameter (or id list) a request names.
type idRef struct {
	kind idKind
	ids  []string
	// anyKind: CreateTags/DeleteTags resource ids, of whatever kind each
	// id's prefix says.
	anyKind bool
}

func errDryRun() *APIError {
	return apiErr("DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
}

// mutate runs an action's change to the world; for a dry run it checks
// instead that everything the request names exists, and changes nothing.
func (s *Sim) mutate(p *params, fn func(w *world) error) error {
	if !p.dry {
		return s.do(true, fn)
	}
	if err := s.do(false, func(w *world) error { return w.checkRefs(p.refs) }); err != nil {
		return err
	}
	return errDryRun()
}

// checkRefs answers the .NotFound error of the first id parameter that
// names something that does not exist, naming every such id of it.
func (w *world) checkRefs(refs []idRef) error {
	for _, r := range refs {
		if r.anyKind {
			if _, err := w.tagMaps(r.ids); err != nil {
				return err
			}
			continue
		}
		if missing := w.missing(r.kind, r.ids); len(missing) > 0 {
			return r.kind.notFoundErr(missing)
		}
	}
	return nil
}

// missing lists the ids of kind k that name nothing, once each, in the
// order given.
func (w *world) missing(k idKind, ids []string) []string {
	var out []string
	for _, id := range dedupe(ids) {
		if !w.exists(k, id) {
			out = append(out, id)
		}
	}
	return out
}

// exists reports whether a resource of kind k has the id.
func (w *world) exists(k idKind, id string) bool {
	var ok bool
	switch k {
	case eniIDs:
		_, ok = w.enis[id]
	case instanceIDs:
		_, ok = w.instances[id]
	case subnetIDs:
		_, ok = w.subnets[id]
	case groupIDs:
		_, ok = w.sgs[id]
	case vpcIDs:
		_, ok = w.vpcs[id]
	case attachmentIDs:
		_, ok = w.attachments[id]
	case trunkAssocIDs:
		_, ok = w.assocs[id]
	case ruleIDs:
		_, ok = w.rules[id]
	}
	return ok
}
