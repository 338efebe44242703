package vpcsim

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
)

// tokenScope names what a NextToken may continue: the action and every
// parameter choosing the items (filters, ids), not the page size nor the
// token itself. A token used for another action or other filters would
// resume at a position in a different list and silently skip or repeat
// items, so paginate refuses it as EC2 refuses a token it did not issue
// for the request (InvalidPaginationToken). MaxResults may change between
// pages: the token names the last item returned, so any page size
// continues right after it.
func tokenScope(p *params) string {
	h := sha256.New()
	var keys []string
	for k := range p.v {
		switch k {
		case "NextToken", "MaxResults", "DryRun", "Version",
			// query-string signing changes with every request
			"AWSAccessKeyId", "Signature", "SignatureMethod", "SignatureVersion", "Timestamp", "Expires":
			continue
		}
		if strings.HasPrefix(k, "X-Amz-") {
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		h.Write([]byte(k))
		for _, v := range p.v[k] {
			h.Write([]byte{0})
			h.Write([]byte(v))
		}
		h.Write([]byte{1})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
