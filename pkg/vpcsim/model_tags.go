package vpcsim

import (
	"errors"
	"slices"
	"strings"
)

const maxTagsPerResource = 50

// tagsOf returns the tag map of any taggable resource.
func (w *world) tagsOf(id string) (map[string]string, error) {
	switch {
	case strings.HasPrefix(id, "eni-attach-"):
	case strings.HasPrefix(id, "eni-"):
		if e, ok := w.enis[id]; ok {
			return e.tags, nil
		}
		return nil, errENINotFound(id)
	case strings.HasPrefix(id, "i-"):
		if in, ok := w.instances[id]; ok {
			return in.tags, nil
		}
		return nil, errInstanceNotFound(id)
	case strings.HasPrefix(id, "subnet-"):
		if s, ok := w.subnets[id]; ok {
			return s.tags, nil
		}
		return nil, apiErr("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
	case strings.HasPrefix(id, "vpc-"):
		if v, ok := w.vpcs[id]; ok {
			return v.tags, nil
		}
		return nil, apiErr("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", id)
	case strings.HasPrefix(id, "sg-"):
		if g, ok := w.sgs[id]; ok {
			if g.tags == nil {
				g.tags = map[string]string{}
			}
			return g.tags, nil
		}
		return nil, apiErr("InvalidGroup.NotFound", "The security group '%s' does not exist", id)
	}
	return nil, apiErr("InvalidID", "The ID '%s' is not valid", id)
}

// tagMaps returns the tag maps of the resources ids name. Of ids that name
// nothing, the error names every one of the same kind as the first.
func (w *world) tagMaps(ids []string) ([]map[string]string, error) {
	maps := make([]map[string]string, 0, len(ids))
	var first *APIError
	for _, id := range ids {
		m, err := w.tagsOf(id)
		var ae *APIError
		switch {
		case errors.As(err, &ae) && strings.HasSuffix(ae.Code, ".NotFound"):
			if first == nil {
				first = ae
			}
		case err != nil:
			return nil, err
		default:
			maps = append(maps, m)
		}
	}
	if first == nil {
		return maps, nil
	}
	for _, k := range taggable {
		if k.notFound == first.Code {
			return nil, k.notFoundErr(w.missing(k, slices.DeleteFunc(slices.Clone(ids), func(id string) bool {
				kk, ok := kindOf(id)
				return !ok || kk != k
			})))
		}
	}
	return nil, first
}

// Tag is one EC2 tag; Value nil in DeleteTags means "any value".
type tagKV struct {
	Key   string
	Value *string
}

func validateTagKey(k string) error {
	if k == "" {
		return apiErr("InvalidParameterValue", "Tag key must not be empty")
	}
	if len(k) > 128 {
		return apiErr("InvalidParameterValue", "Tag key exceeds the maximum length of 128 characters")
	}
	if strings.HasPrefix(strings.ToLower(k), "aws:") {
		return apiErr("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use")
	}
	return nil
}

func (w *world) createTags(ids []string, tags []tagKV) error {
	if len(ids) == 0 {
		return errMissing("ResourceId")
	}
	if len(tags) == 0 {
		return errMissing("Tag")
	}
	maps, err := w.tagMaps(ids)
	if err != nil {
		return err
	}
	for _, t := range tags {
		if err := validateTagKey(t.Key); err != nil {
			return err
		}
		if t.Value != nil && len(*t.Value) > 256 {
			return apiErr("InvalidParameterValue", "Tag value exceeds the maximum length of 256 characters")
		}
	}
	for i, m := range maps {
		n := len(m)
		for _, t := range tags {
			if _, ok := m[t.Key]; !ok {
				n++
			}
		}
		if n > maxTagsPerResource {
			return apiErr("TagLimitExceeded", "The maximum number of tags (%d) for resource %s has been reached.", maxTagsPerResource, ids[i])
		}
	}
	for _, m := range maps {
		for _, t := range tags {
			v := ""
			if t.Value != nil {
				v = *t.Value
			}
			m[t.Key] = v
		}
	}
	return nil
}

func (w *world) deleteTags(ids []string, tags []tagKV) error {
	if len(ids) == 0 {
		return errMissing("ResourceId")
	}
	maps, err := w.tagMaps(ids)
	if err != nil {
		return err
	}
	for _, m := range maps {
		if len(tags) == 0 { // no Tag given: delete all
			for k := range m {
				delete(m, k)
			}
			continue
		}
		for _, t := range tags {
			if v, ok := m[t.Key]; ok && (t.Value == nil || *t.Value == v) {
				delete(m, t.Key)
			}
		}
	}
	return nil
}
