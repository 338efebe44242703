package datastore

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
)

// Members of the checkpoint this version does not know are kept, as read,
// and written back with the entry they came with: a downgrade to upstream
// (or an upstream newer than the one docs/compatibility.md describes)
// finds what it wrote after ipamd rewrote the file. A member whose name
// matches a known one but for case is not kept: encoding/json, upstream's
// decoder, would read it as the known one.

// knownTop, knownAlloc and knownMeta are the members this version reads.
var (
	knownTop   = []string{"version", "allocations", "unassigned"}
	knownAlloc = []string{"networkName", "containerID", "ifName", "ipv4", "ipv6", "allocationTimestamp", "metadata"}
	knownMeta  = []string{"k8sPodNamespace", "k8sPodName", "interfacesCount"}
)

// kept are an allocation's members this version does not know: those of
// the entry and those of its "metadata" object.
type kept struct{ entry, meta string }

// keepUnknown records in f (decoded from data) the top-level,
// per-allocation and per-metadata members it does not know.
func keepUnknown(f *File, data []byte) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return err
	}
	var err error
	if f.extra, err = unknownMembers(top, knownTop); err != nil {
		return err
	}
	// The entries as the File's decoder found them: encoding/json matches
	// "allocations" (and "metadata") in any case, and a file without it
	// has none.
	var entries struct {
		Allocations []json.RawMessage `json:"allocations"`
	}
	if err := json.Unmarshal(data, &entries); err != nil {
		return err
	}
	for i := range min(len(entries.Allocations), len(f.Allocations)) {
		var obj, meta map[string]json.RawMessage
		if err := json.Unmarshal(entries.Allocations[i], &obj); err != nil {
			return err
		}
		if raw, ok := member(obj, "metadata"); ok {
			if err := json.Unmarshal(raw, &meta); err != nil {
				return err
			}
		}
		k := &f.Allocations[i].extra
		if k.entry, err = unknownMembers(obj, knownAlloc); err != nil {
			return err
		}
		if k.meta, err = unknownMembers(meta, knownMeta); err != nil {
			return err
		}
	}
	return nil
}

// member finds obj's member name as encoding/json does: the exact name,
// else one equal to it but for case (the last in name order).
func member(obj map[string]json.RawMessage, name string) (json.RawMessage, bool) {
	if raw, ok := obj[name]; ok {
		return raw, true
	}
	var raw json.RawMessage
	found := false
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if strings.EqualFold(k, name) {
			raw, found = obj[k], true
		}
	}
	return raw, found
}

// unknownMembers renders the members of obj not in known as JSON object
// members (`"name":value,…`, names sorted, values compacted); "" if none.
func unknownMembers(obj map[string]json.RawMessage, known []string) (string, error) {
	var b []byte
	for _, name := range slices.Sorted(maps.Keys(obj)) {
		if slices.ContainsFunc(known, func(k string) bool { return strings.EqualFold(k, name) }) {
			continue
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendString(b, name); err != nil {
			return "", err
		}
		b = append(b, ':')
		var v bytes.Buffer
		if err := json.Compact(&v, obj[name]); err != nil {
			return "", err
		}
		b = append(b, v.Bytes()...)
	}
	return string(b), nil
}

// appendExtra appends kept members after an object's known ones.
func appendExtra(b []byte, extra string) []byte {
	if extra == "" {
		return b
	}
	return append(append(b, ','), extra...)
}
