package vpcsim

import "fmt"

// EC2's bounds and default for HttpPutResponseHopLimit.
const (
	defaultIMDSHopLimit = 1
	maxIMDSHopLimit     = 64
)

func validHopLimit(n int) bool { return n >= 1 && n <= maxIMDSHopLimit }

// metadataOptionsChange is a ModifyInstanceMetadataOptions call: a nil or
// empty field keeps the instance's current value, as EC2 does.
type metadataOptionsChange struct {
	HopLimit *int
	Tokens   string // "optional", "required" or ""
}

func (w *world) modifyMetadataOptions(id string, c metadataOptionsChange) (*instance, error) {
	in, err := w.instance(id)
	if err != nil {
		return nil, err
	}
	if c.HopLimit != nil && !validHopLimit(*c.HopLimit) {
		return nil, errInvalid("HttpPutResponseHopLimit", fmt.Sprint(*c.HopLimit))
	}
	switch c.Tokens {
	case "", "optional", "required":
	default:
		return nil, errInvalid("HttpTokens", c.Tokens)
	}
	if c.HopLimit != nil {
		in.imdsHopLimit = *c.HopLimit
	}
	if c.Tokens != "" {
		in.imdsV1Disabled = c.Tokens == "required"
	}
	w.touch(in.id) // IMDS serves the new settings
	return in, nil
}
