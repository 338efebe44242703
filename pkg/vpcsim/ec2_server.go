package vpcsim

import (
	"bytes"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	ec2APIVersion = "2016-11-15"
	ec2XMLNS      = "http://ec2.amazonaws.com/doc/2016-11-15/"
	maxBodyBytes  = 1 << 20

	// largeResponse is the size above which an answer waits
	// Options.largeDelay (WithLargeResponseDelay) before it is written.
	largeResponse = 3 << 10
	// DefaultLargeResponseDelay works around a race in the SDK's HTTP client
	// that only a loopback server is fast enough to trigger:
	//
	//  1. smithy-go wraps the request body in a reader net/http does not
	//     know to be in memory, so the transport flushes the headers first
	//     and then hands the body straight to the socket.
	//  2. The server has the whole request and answers at once; Do returns
	//     and smithy-go closes the body (ClientHandler.Handle).
	//  3. Meanwhile the transport's write loop, after copying Content-Length
	//     bytes, probes the body for extra bytes. The closed smithy reader's
	//     WriteTo answers io.EOF (not 0, nil), net/http takes that for a
	//     write error and closes the connection, under the SDK that is still
	//     reading the response: "use of closed network connection".
	//
	// Answers small enough to arrive in one read are already buffered and
	// survive; large ones (DescribeInstanceTypes, big describes) fail about
	// one call in six with no delay on a loaded machine. The server cannot
	// remove the race: it already reads the whole body before answering,
	// and the client's probe leaves nothing on the wire to wait for. So:
	//  - large answers wait a moment, which narrows the window but cannot
	//    close it: without retries, 0 of 300 calls failed at load 25 with
	//    5 ms (54 with none), but 5 of 300 beside a `go build -a`;
	//  - the SDK's standard retryer counts the error as retryable, so an
	//    unmodified agent with default retries sees it only if every
	//    attempt loses the race;
	//  - our own client (pkg/awsutils, transport.go) hands net/http an
	//    in-memory body: headers and body then go out in one write after
	//    the probe, so no answer can come first, at any load and with no
	//    delay.
	// docs/compatibility.md, "vpcsim: fidelity to EC2".
	DefaultLargeResponseDelay = 5 * time.Millisecond
)

// actionFunc executes one EC2 action and returns the response body (a struct
// whose fields become the children of <ActionResponse>).
type actionFunc func(s *Sim, p *params) (any, error)

// actions is the EC2 Query API vpcsim implements.
var actions = map[string]struct{ fn actionFunc }{
	"DescribeInstanceTypes":           {fn: (*Sim).describeInstanceTypes},
	"DescribeInstances":               {fn: (*Sim).describeInstances},
	"DescribeNetworkInterfaces":       {fn: (*Sim).describeNetworkInterfaces},
	"DescribeSubnets":                 {fn: (*Sim).describeSubnets},
	"DescribeVpcs":                    {fn: (*Sim).describeVpcs},
	"DescribeSecurityGroups":          {fn: (*Sim).describeSecurityGroups},
	"DescribeAvailabilityZones":       {fn: (*Sim).describeAvailabilityZones},
	"DescribeTags":                    {fn: (*Sim).describeTags},
	"CreateNetworkInterface":          {fn: (*Sim).createNetworkInterface},
	"AttachNetworkInterface":          {fn: (*Sim).attachNetworkInterface},
	"DetachNetworkInterface":          {fn: (*Sim).detachNetworkInterface},
	"DeleteNetworkInterface":          {fn: (*Sim).deleteNetworkInterface},
	"ModifyNetworkInterfaceAttribute": {fn: (*Sim).modifyNetworkInterfaceAttribute},
	"AssignPrivateIpAddresses":        {fn: (*Sim).assignPrivateIPAddresses},
	"UnassignPrivateIpAddresses":      {fn: (*Sim).unassignPrivateIPAddresses},
	"AssignIpv6Addresses":             {fn: (*Sim).assignIPv6Addresses},
	"UnassignIpv6Addresses":           {fn: (*Sim).unassignIPv6Addresses},
	"CreateTags":                      {fn: (*Sim).createTags},
	"DeleteTags":                      {fn: (*Sim).deleteTags},
	"RunInstances":                    {fn: (*Sim).runInstances},
	"ModifyInstanceMetadataOptions":   {fn: (*Sim).modifyInstanceMetadataOptions},
	"TerminateInstances":              {fn: (*Sim).terminateInstances},

	"AssociateTrunkInterface":            {fn: (*Sim).associateTrunkInterface},
	"DisassociateTrunkInterface":         {fn: (*Sim).disassociateTrunkInterface},
	"DescribeTrunkInterfaceAssociations": {fn: (*Sim).describeTrunkInterfaceAssociations},
	"CreateNetworkInterfacePermission":   {fn: (*Sim).createNetworkInterfacePermission},
	"CreateSecurityGroup":                {fn: (*Sim).createSecurityGroup},
	"DeleteSecurityGroup":                {fn: (*Sim).deleteSecurityGroup},
	"AuthorizeSecurityGroupIngress":      {fn: (*Sim).authorizeSecurityGroupIngress},
	"AuthorizeSecurityGroupEgress":       {fn: (*Sim).authorizeSecurityGroupEgress},
	"RevokeSecurityGroupIngress":         {fn: (*Sim).revokeSecurityGroupIngress},
	"RevokeSecurityGroupEgress":          {fn: (*Sim).revokeSecurityGroupEgress},
	"DescribeSecurityGroupRules":         {fn: (*Sim).describeSecurityGroupRules},
}

// EC2Handler serves the EC2 Query API (POST form bodies and GET query strings).
func (s *Sim) EC2Handler() http.Handler {
	return http.HandlerFunc(s.serveEC2)
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (s *Sim) serveEC2(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	action := ""
	defer func() {
		// a bug must still produce an EC2-shaped answer, and be visible
		if v := recover(); v != nil {
			s.log.Error("ec2 handler panic", "action", action, "panic", v)
			s.stats.record(action, "InternalError")
			writeEC2Error(w, reqID, apiErr("InternalError", "An internal error has occurred."))
		}
	}()
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		writeEC2Error(w, reqID, apiErr("InvalidHttpRequest", "The HTTP method %s is not supported.", r.Method))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		writeEC2Error(w, reqID, apiErr("MalformedQueryString", "The request could not be parsed: %v", err))
		return
	}
	// Never answer before the whole request is in (ParseForm leaves bodies
	// of other content types unread).
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		writeEC2Error(w, reqID, apiErr("MalformedQueryString", "The request body could not be read: %v", err))
		return
	}
	p := &params{v: r.Form}
	action = p.str("Action")
	if action == "" {
		writeEC2Error(w, reqID, apiErr("MissingAction", "The request must contain the parameter Action."))
		return
	}
	a, ok := actions[action]
	if !ok {
		s.stats.record(action, "InvalidAction")
		writeEC2Error(w, reqID, apiErr("InvalidAction", "The action %s is not valid for this web service.", action))
		return
	}
	// EC2 refuses a parameter the action does not define before anything
	// else about the request (docs/compatibility.md, vpcsim).
	if bad := unknownParam(action, slices.Collect(maps.Keys(r.Form))); bad != "" {
		s.stats.record(action, "UnknownParameter")
		writeEC2Error(w, reqID, errUnknownParam(bad))
		return
	}
	body, err := s.call(action, a.fn, p)
	if err != nil {
		// Actions may wrap an *APIError with context; EC2 answers with the
		// wrapped code. Anything else is our bug: InternalError.
		var ae *APIError
		if !errors.As(err, &ae) {
			s.log.Error("ec2 action failed", "action", action, "err", err)
			ae = apiErr("InternalError", "An internal error has occurred.")
		} else {
			s.log.Debug("ec2 error", "action", action, "code", ae.Code, "err", err)
		}
		s.stats.record(action, ae.Code)
		writeEC2Error(w, reqID, ae)
		return
	}
	s.stats.record(action, "")
	writeEC2Response(w, action, reqID, body, s.largeDelay)
}

// call applies throttling, permissions, injected faults and latency, then
// runs the action.
func (s *Sim) call(action string, fn actionFunc, p *params) (any, error) {
	if !s.lim.take(throttleClass(action, isFiltered(p))) {
		return nil, apiErr("RequestLimitExceeded", "Request limit exceeded.")
	}
	inject, after := s.inj.check(action)
	if inject != nil && !after {
		return nil, inject
	}
	if d := s.inj.latency(action); d > 0 {
		// EC2 carries out a request it has received even when the caller
		// stops waiting or dies before the answer: a killed ipamd must find
		// the ENI it asked for created (docs/compatibility.md, vpcsim).
		time.Sleep(d)
	}
	// The permission (above), then the parameters, then the resources
	// named, and only then a dry run's answer (ec2_dryrun.go).
	if dry := p.boolp("DryRun"); dry != nil && *dry {
		p.dry = true
	}
	if err := missingParam(action, p); err != nil {
		return nil, err
	}
	body, err := fn(s, p)
	if err == nil && p.err != nil {
		err = p.err
	}
	if err == nil && p.dry {
		// a read ran in full and changed nothing; a change stopped in mutate
		err = errDryRun()
	}
	if inject != nil {
		return nil, inject // applied (or refused), but the caller hears only this
	}
	return body, err
}

// isFiltered reports whether a describe names ids, filters or a page size,
// which moves it out of EC2's "unfiltered and unpaginated" bucket.
func isFiltered(p *params) bool {
	for k := range p.v {
		if strings.HasPrefix(k, "Filter.") || k == "MaxResults" || k == "NextToken" ||
			strings.HasSuffix(k, "Id.1") || strings.HasPrefix(k, "InstanceType.") {
			return true
		}
	}
	return false
}

func writeEC2Response(w http.ResponseWriter, action, reqID string, body any, largeDelay time.Duration) {
	var inner bytes.Buffer
	if body != nil {
		// encode under a throwaway root, then keep only its children
		if err := xml.NewEncoder(&inner).EncodeElement(body, xml.StartElement{Name: xml.Name{Local: "x"}}); err != nil {
			writeEC2Error(w, reqID, apiErr("InternalError", "An internal error has occurred."))
			return
		}
	}
	b := inner.Bytes()
	if bytes.HasPrefix(b, []byte("<x>")) && bytes.HasSuffix(b, []byte("</x>")) {
		b = b[3 : len(b)-4]
	} else {
		b = nil // "<x></x>" collapses to nothing useful
	}
	var out bytes.Buffer
	out.WriteString(xml.Header)
	fmt.Fprintf(&out, "<%sResponse xmlns=\"%s\"><requestId>%s</requestId>", action, ec2XMLNS, reqID)
	out.Write(b)
	fmt.Fprintf(&out, "</%sResponse>", action)
	if out.Len() > largeResponse && largeDelay > 0 {
		time.Sleep(largeDelay)
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(out.Len()))
	w.Header().Set("X-Amzn-Requestid", reqID)
	_, _ = w.Write(out.Bytes())
}

func writeEC2Error(w http.ResponseWriter, reqID string, e *APIError) {
	var out bytes.Buffer
	out.WriteString(xml.Header)
	out.WriteString("<Response><Errors><Error><Code>")
	_ = xml.EscapeText(&out, []byte(e.Code))
	out.WriteString("</Code><Message>")
	_ = xml.EscapeText(&out, []byte(e.Message))
	out.WriteString("</Message></Error></Errors><RequestID>")
	out.WriteString(reqID)
	out.WriteString("</RequestID></Response>")
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("X-Amzn-Requestid", reqID)
	w.WriteHeader(e.HTTPStatus())
	_, _ = w.Write(out.Bytes())
}
