package vpcsim

import (
	"slices"
	"sort"
	"strings"
)

// alwaysKnown are accepted on every action: the action itself and the
// signature parameters a client may send in the query instead of headers.
var alwaysKnown = map[string]bool{
	"Action": true, "Version": true,
	"X-Amz-Algorithm": true, "X-Amz-Credential": true, "X-Amz-Date": true, "X-Amz-Expires": true,
	"X-Amz-Security-Token": true, "X-Amz-Signature": true, "X-Amz-SignedHeaders": true,
	"AWSAccessKeyId": true, "Signature": true, "SignatureMethod": true, "SignatureVersion": true,
	"Timestamp": true, "Expires": true, "SecurityToken": true,
}

// paramTrie holds one action's parameter names split at dots; the child
// "N" stands for any list index.
type paramTrie struct {
	leaf     bool
	children map[string]*paramTrie
}

func newParamTrie(names []string) *paramTrie {
	root := &paramTrie{}
	for _, n := range names {
		t := root
		for _, seg := range strings.Split(n, ".") {
			if t.children == nil {
				t.children = map[string]*paramTrie{}
			}
			next := t.children[seg]
			if next == nil {
				next = &paramTrie{}
				t.children[seg] = next
			}
			t = next
		}
		t.leaf = true
	}
	return root
}

// match reports whether segs is one of the trie's names. Any non-empty
// segment fills an index: a malformed index ("Filter.x.Name") is then
// refused by the action as an invalid list index, as before.
func (t *paramTrie) match(segs []string) bool {
	if len(segs) == 0 {
		return t.leaf
	}
	if c := t.children[segs[0]]; c != nil && c.match(segs[1:]) {
		return true
	}
	c := t.children["N"]
	return c != nil && segs[0] != "" && c.match(segs[1:])
}

// knownTries is knownParams as tries.
var knownTries = func() map[string]*paramTrie {
	out := make(map[string]*paramTrie, len(knownParams))
	for action, names := range knownParams {
		out[action] = newParamTrie(names)
	}
	return out
}()

func join(lists ...[]string) []string { return slices.Concat(lists...) }

// unknownParam returns the first parameter name, in name order, that action
// does not recognise, or "" when all are known (or the action has no table).
func unknownParam(action string, names []string) string {
	known, ok := knownTries[action]
	if !ok {
		return ""
	}
	sorted := slices.Clone(names)
	sort.Strings(sorted)
	for _, n := range sorted {
		if !alwaysKnown[n] && !known.match(strings.Split(n, ".")) {
			return n
		}
	}
	return ""
}

func errUnknownParam(name string) *APIError {
	return apiErr("UnknownParameter", "The parameter %s is not recognized", name)
}
