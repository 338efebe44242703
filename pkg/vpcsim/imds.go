package vpcsim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	imdsTokenHeader    = "X-Aws-Ec2-Metadata-Token"
	imdsTTLHeader      = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	imdsMaxTokenTTLSec = 21600
)

type imdsToken struct {
	instanceID string
	expires    time.Time
}

// IMDSHandler serves the metadata service of one instance.
func (s *Sim) IMDSHandler(instanceID string) (http.Handler, error) {
	if _, ok := s.lagged(instanceID); !ok {
		return nil, fmt.Errorf("imds: %w", errInstanceNotFound(instanceID))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serveIMDS(w, r, instanceID)
	}), nil
}

// IMDSHandlerByRemoteAddr serves many instances' metadata on one endpoint:
// the instance is the one that holds the request's source address (its
// primary address, as when a node calls 169.254.169.254, or any address of
// its ENIs, as when a pod not SNATed to its node's address does).
func (s *Sim) IMDSHandlerByRemoteAddr() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		addr, err := netip.ParseAddr(host)
		if err != nil {
			http.Error(w, "unknown source address", http.StatusForbidden)
			return
		}
		id, ok := s.instanceByPrivateIP(addr.Unmap())
		if !ok {
			http.Error(w, "no instance has primary address "+addr.String(), http.StatusForbidden)
			return
		}
		s.serveIMDS(w, r, id)
	})
}

func (s *Sim) serveIMDS(w http.ResponseWriter, r *http.Request, instanceID string) {
	w.Header().Set("Server", "EC2ws")
	if r.URL.Path == "/latest/api/token" {
		if r.Method != http.MethodPut {
			w.Header().Set("Allow", "PUT")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		s.issueToken(w, r, instanceID)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	v, ok := s.lagged(instanceID)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if tok := r.Header.Get(imdsTokenHeader); tok != "" || v.V1Disabled {
		if !s.validToken(tok, instanceID) {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
	}
	body, ok := v.lookup(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if strings.HasSuffix(r.URL.Path, "/document") {
		w.Header().Set("Content-Type", "application/json")
	} else {
		w.Header().Set("Content-Type", "text/plain")
	}
	_, _ = w.Write([]byte(body))
}

func (s *Sim) issueToken(w http.ResponseWriter, r *http.Request, instanceID string) {
	if r.Header.Get("X-Forwarded-For") != "" {
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	ttl, err := strconv.Atoi(r.Header.Get(imdsTTLHeader))
	if err != nil || ttl < 1 || ttl > imdsMaxTokenTTLSec {
		http.Error(w, "Bad Request: token TTL must be 1-21600 seconds", http.StatusBadRequest)
		return
	}
	// before a token exists: one that cannot be sent as EC2 would is none
	if err := s.limitTokenHops(w, r, instanceID); err != nil {
		s.log.Error("imds: cannot limit the token answer's hops", "instance", instanceID, "err", err)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	var b [24]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	s.mu.Lock()
	now := s.now()
	for k, t := range s.tokens {
		if now.After(t.expires) {
			delete(s.tokens, k)
		}
	}
	s.tokens[tok] = imdsToken{instanceID: instanceID, expires: now.Add(time.Duration(ttl) * time.Second)}
	s.mu.Unlock()
	w.Header().Set(imdsTTLHeader, strconv.Itoa(ttl))
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(tok))
}

func (s *Sim) validToken(tok, instanceID string) bool {
	if tok == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tok]
	return ok && t.instanceID == instanceID && !s.now().After(t.expires)
}

// lookup resolves a metadata path to a leaf value or a directory listing.
func (v *imdsView) lookup(path string) (string, bool) {
	switch {
	case path == "/" || path == "":
		return "latest", true
	case path == "/latest" || path == "/latest/":
		return "dynamic\nmeta-data", true
	case strings.HasPrefix(path, "/latest/meta-data"):
		return treeLookup(v.metaData(), strings.TrimPrefix(path, "/latest/meta-data"))
	case strings.HasPrefix(path, "/latest/dynamic"):
		return treeLookup(map[string]string{"instance-identity/document": v.identityDocument()}, strings.TrimPrefix(path, "/latest/dynamic"))
	}
	return "", false
}

// treeLookup serves leaves and EC2-style listings: one name per line,
// subdirectories with a trailing slash.
func treeLookup(tree map[string]string, p string) (string, bool) {
	if p != "" && !strings.HasPrefix(p, "/") {
		return "", false // e.g. /latest/meta-dataX
	}
	p = strings.TrimPrefix(p, "/")
	if val, ok := tree[p]; ok && !strings.HasSuffix(p, "/") {
		return val, true
	}
	dir := strings.TrimSuffix(p, "/")
	if dir != "" {
		dir += "/"
	}
	seen := map[string]bool{}
	var names []string
	for k := range tree {
		if !strings.HasPrefix(k, dir) {
			continue
		}
		rest := strings.TrimPrefix(k, dir)
		name, _, sub := strings.Cut(rest, "/")
		if sub {
			name += "/"
		}
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "", false
	}
	sort.Strings(names)
	return strings.Join(names, "\n"), true
}

func (v *imdsView) metaData() map[string]string {
	m := map[string]string{
		"ami-id":                      "ami-0123456789abcdef0",
		"ami-launch-index":            "0",
		"hostname":                    hostname(v.LocalIPv4, v.Region),
		"local-hostname":              hostname(v.LocalIPv4, v.Region),
		"instance-id":                 v.InstanceID,
		"instance-type":               v.InstanceType,
		"instance-action":             "none",
		"local-ipv4":                  v.LocalIPv4,
		"mac":                         v.MAC,
		"placement/availability-zone": v.AZ,
		"placement/region":            v.Region,
		"security-groups":             strings.Join(v.SGNames, "\n"),
		"services/domain":             "amazonaws.com",
		"services/partition":          "aws",
	}
	if v.PublicIPv4 != "" {
		m["public-ipv4"] = v.PublicIPv4
	}
	if v.IPv6 != "" {
		m["ipv6"] = v.IPv6
	}
	for _, x := range v.MACs {
		p := "network/interfaces/macs/" + x.MAC + "/"
		set := func(k string, vals ...string) { m[p+k] = strings.Join(vals, "\n") }
		set("device-number", strconv.Itoa(x.Device))
		set("network-card", strconv.Itoa(x.Card))
		set("interface-id", x.ENIID)
		set("mac", x.MAC)
		set("owner-id", x.OwnerID)
		set("subnet-id", x.SubnetID)
		set("vpc-id", x.VPCID)
		set("security-group-ids", x.SGIDs...)
		set("security-groups", x.SGNames...)
		set("local-ipv4s", x.LocalIPv4s...)
		set("local-hostname", hostname(x.LocalIPv4s[0], v.Region))
		set("subnet-ipv4-cidr-block", x.SubnetCIDR)
		set("vpc-ipv4-cidr-block", x.VPCCIDRs[0])
		set("vpc-ipv4-cidr-blocks", x.VPCCIDRs...)
		// optional lists are absent (404) when empty, as on EC2
		if len(x.PublicIPv4s) > 0 {
			set("public-ipv4s", x.PublicIPv4s...)
		}
		if len(x.IPv4Prefixes) > 0 {
			set("ipv4-prefix", x.IPv4Prefixes...)
		}
		if len(x.IPv6s) > 0 {
			set("ipv6s", x.IPv6s...)
		}
		if len(x.IPv6Prefixes) > 0 {
			set("ipv6-prefix", x.IPv6Prefixes...)
		}
		if x.SubnetIPv6 != "" {
			set("subnet-ipv6-cidr-blocks", x.SubnetIPv6)
		}
		if x.VPCIPv6 != "" {
			set("vpc-ipv6-cidr-blocks", x.VPCIPv6)
		}
	}
	return m
}

func hostname(ip, region string) string {
	return "ip-" + strings.ReplaceAll(ip, ".", "-") + "." + region + ".compute.internal"
}

func (v *imdsView) identityDocument() string {
	doc := map[string]any{
		"accountId":               v.AccountID,
		"architecture":            v.Arch,
		"availabilityZone":        v.AZ,
		"billingProducts":         nil,
		"devpayProductCodes":      nil,
		"marketplaceProductCodes": nil,
		"imageId":                 "ami-0123456789abcdef0",
		"instanceId":              v.InstanceID,
		"instanceType":            v.InstanceType,
		"kernelId":                nil,
		"pendingTime":             v.Launched.UTC().Format(time.RFC3339),
		"privateIp":               v.LocalIPv4,
		"ramdiskId":               nil,
		"region":                  v.Region,
		"version":                 "2017-09-30",
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return string(b)
}
