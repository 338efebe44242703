package resourcecontroller

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// caCommonName is the subject of every CA GenerateServingCertFor makes;
// the owner goes in the organizational unit.
const caCommonName = "vpc-resource-controller webhook CA"

func caSubject(owner string) pkix.Name {
	n := pkix.Name{CommonName: caCommonName}
	if owner != "" {
		n.OrganizationalUnit = []string{owner}
	}
	return n
}

// ownerOf is the replica a CA was made for; "" for one made without an
// owner (an older controller, which wrote the bundle alone).
func ownerOf(c *x509.Certificate) string {
	if len(c.Subject.OrganizationalUnit) == 0 {
		return ""
	}
	return c.Subject.OrganizationalUnit[0]
}

// caOwner reads the owner of the first certificate of caPEM.
func caOwner(caPEM []byte) (string, error) {
	b, _ := pem.Decode(caPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return "", errors.New("webhook CA: not a PEM certificate")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return "", fmt.Errorf("webhook CA: %w", err)
	}
	return ownerOf(c), nil
}

// mergeCABundle is the caBundle once a replica named owner has started
// with the CA caPEM: the existing CAs of other owners that are live and
// not expired, then caPEM. The owner's own earlier CA goes (a restart),
// and so does anything that is not a certificate. A CA without an owner
// (an older controller's, at most one) is kept while other owners start,
// so that it stays trusted during an upgrade.
func mergeCABundle(existing, caPEM []byte, owner string, now time.Time, live func(owner string) bool) []byte {
	var out bytes.Buffer
	for rest := existing; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil || !now.Before(c.NotAfter) {
			continue
		}
		o := ownerOf(c)
		if o == owner || o != "" && !live(o) {
			continue
		}
		_ = pem.Encode(&out, b)
	}
	out.Write(caPEM)
	return out.Bytes()
}
