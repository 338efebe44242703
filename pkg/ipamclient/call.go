package ipamclient

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// streamID is the one stream of each connection: a call is alone on it.
	streamID = 1
	// maxHeaderList bounds a received header block, as grpc-go's default.
	maxHeaderList = 16 << 20
	// msgPrefixLen is gRPC's message prefix: a compressed flag and a
	// big-endian length.
	msgPrefixLen = 5
	// userAgent names us; servers only log it.
	userAgent = "vpc-cni-ipamclient"
	// readBuf holds a whole reply of the plugin's calls (a few hundred
	// bytes) in one read; larger frames are read past it. Every byte of it
	// is a fresh page the process faults in.
	readBuf = 4 << 10
)

// call is one unary RPC on its own connection. It is used by one
// goroutine: writes happen between reads, never concurrently.
type call struct {
	conn    net.Conn
	r       *bufio.Reader
	out     []byte
	maxRecv int

	sendConn, sendStream int64 // flow-control windows the server granted
	maxFrame             int
	initialWindow        int64

	// frameBuf is reused across reads: header fragments and message bytes
	// are copied out of it before the next read.
	frameBuf    []byte
	writeFailed bool

	hdec       *headerDecoder
	headerBuf  []byte
	inHeaders  bool // a header block awaits CONTINUATION frames
	endOnBlock bool // the pending header block ends the stream

	gotHeaders bool
	httpStatus int
	grpcType   bool
	msg        []byte
	msgs       int
	unacked    int
	trailer    Metadata
	status     string
	message    string
	hasStatus  bool
	done       bool
}

// Metadata holds a reply's custom trailer keys, lower-case as on the wire.
type Metadata map[string][]string

// Get returns the values of key.
func (md Metadata) Get(key string) []string { return md[strings.ToLower(key)] }

// invoke runs method with the encoded request and returns the encoded
// reply and the trailer metadata.
func (c *Client) invoke(ctx context.Context, method string, req []byte) ([]byte, Metadata, error) {
	return c.start(ctx, method, req, nil).wait()
}

// pending is a call whose request is on its way: start sends it, wait
// reads the answer. Between the two the caller may do other work while
// the server answers; the reply waits in the socket.
type pending struct {
	ctx  context.Context
	k    *call
	stop func() bool
	err  error
}

// start connects and writes the whole request. A failure is kept for
// wait, so start's caller has one place to handle errors.
func (c *Client) start(ctx context.Context, method string, req []byte, md []headerField) *pending {
	if err := ctx.Err(); err != nil {
		return &pending{err: ctxStatus(err)}
	}
	conn, err := c.connect(ctx)
	if err != nil {
		return &pending{err: err}
	}
	// A done context interrupts any read or write in progress.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	k := &call{
		conn: conn, r: bufio.NewReaderSize(conn, readBuf), maxRecv: c.maxRecv(),
		sendConn: defaultWindow, sendStream: defaultWindow, initialWindow: defaultWindow,
		maxFrame: defaultMaxFrame,
	}
	k.hdec = newHeaderDecoder(maxHeaderList)
	return &pending{ctx: ctx, k: k, stop: stop, err: k.sendRequest(ctx, method, req, md)}
}

// wait reads the answer of a started call and closes its connection.
func (p *pending) wait() ([]byte, Metadata, error) {
	if p.k == nil {
		return nil, nil, p.err
	}
	defer p.k.conn.Close()
	defer p.stop()
	ctx, k, err := p.ctx, p.k, p.err
	var reply []byte
	if err == nil {
		reply, err = k.readReply()
	}
	if err != nil && ctx.Err() != nil {
		return nil, nil, ctxStatus(ctx.Err())
	}
	// The server cancels the stream when the deadline we sent passes,
	// which may be a moment before our own timer fires.
	if dl, ok := ctx.Deadline(); ok && CodeOf(err) == Canceled && !dl.After(time.Now()) {
		return nil, nil, ctxStatus(context.DeadlineExceeded)
	}
	return reply, k.trailer, err
}

// connect dials the socket. A fail-fast call fails at once with
// Unavailable; a wait-for-ready call retries until its context ends.
// A wait-for-ready call that runs out of time reports the last dial
// error, as grpc-go does ("latest balancer error: …"), so the caller
// learns why nothing answered.
func (c *Client) connect(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	var b backoff
	var last *Status
	for {
		conn, err := d.DialContext(ctx, "unix", c.Socket)
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, waitStatus(ctx.Err(), last)
		}
		last = dialStatus(c.Socket, err)
		if !c.WaitForReady {
			return nil, last
		}
		t := time.NewTimer(b.next())
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, waitStatus(ctx.Err(), last)
		case <-t.C:
		}
	}
}

// dialStatus is grpc-go's status for a failed dial. The kernel refuses a
// connection to a path that is no socket (a directory left where the
// socket should be) with the same error as to a socket nobody listens on:
// the status says which it is.
func dialStatus(socket string, err error) *Status {
	msg := "transport: Error while dialing: " + err.Error()
	if errors.Is(err, syscall.ECONNREFUSED) {
		if fi, serr := os.Stat(socket); serr == nil && fi.Mode()&os.ModeSocket == 0 {
			kind := "regular file"
			if fi.IsDir() {
				kind = "directory"
			} else if !fi.Mode().IsRegular() {
				kind = "file of mode " + fi.Mode().Type().String()
			}
			msg += "; " + socket + " is a " + kind + ", not a unix socket"
		}
	}
	return statusf(Unavailable, "connection error: desc = %q", msg)
}

// waitStatus is the status of a call whose context ended while it waited
// to connect.
func waitStatus(ctxErr error, last *Status) *Status {
	s := ctxStatus(ctxErr)
	if last != nil {
		s.Message = "latest balancer error: " + last.Message
	}
	return s
}

func ctxStatus(err error) *Status {
	if errors.Is(err, context.Canceled) {
		return &Status{Code: Canceled, Message: err.Error()}
	}
	return &Status{Code: DeadlineExceeded, Message: err.Error()}
}

// sendRequest writes the connection preface, our SETTINGS, the request's
// HEADERS and DATA, in one write when they fit the flow-control windows:
// HTTP/2 lets a client send before it has the server's SETTINGS.
func (k *call) sendRequest(ctx context.Context, method string, req []byte, md []headerField) error {
	if len(req) > 1<<32-1 {
		return statusf(ResourceExhausted, "grpc: message too large (%d bytes)", len(req))
	}
	k.out = append(k.out, clientPreface...)
	k.out = appendFrame(k.out, frameSettings, 0, 0, nil)
	if err := k.writeHeaders(ctx, method, md); err != nil {
		return err
	}
	body := make([]byte, msgPrefixLen, msgPrefixLen+len(req))
	binary.BigEndian.PutUint32(body[1:], uint32(len(req)))
	body = append(body, req...)
	return k.send(body)
}

// readReply reads frames until the stream ends and returns the reply.
func (k *call) readReply() ([]byte, error) {
	for !k.done {
		if err := k.step(); err != nil {
			return nil, err
		}
	}
	return k.result()
}

// writeHeaders writes the request's headers, then md (custom metadata).
func (k *call) writeHeaders(ctx context.Context, method string, md []headerField) error {
	block := make([]byte, 0, 256)
	for _, f := range [...]headerField{
		{":method", "POST"},
		{":scheme", "http"},
		{":path", method},
		{":authority", "localhost"},
		{"content-type", "application/grpc"},
		{"user-agent", userAgent},
		{"te", "trailers"},
	} {
		block = appendHeader(block, f.Name, f.Value)
	}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return ctxStatus(context.DeadlineExceeded)
		}
		block = appendHeader(block, "grpc-timeout", encodeTimeout(left))
	}
	for _, f := range md {
		block = appendHeader(block, f.Name, f.Value)
	}
	// Our few headers fit one frame of the minimum size.
	k.out = appendFrame(k.out, frameHeaders, flagEndHeaders, streamID, block)
	return nil
}

// send writes the request body within the server's flow-control windows,
// reading frames whenever they are spent. The server may answer before
// it has all of it (e.g. rejecting its size): then the rest is dropped.
func (k *call) send(body []byte) error {
	for !k.done {
		n := min(int64(len(body)), k.sendConn, k.sendStream, int64(k.maxFrame))
		if n > 0 || len(body) == 0 {
			var flags uint8
			if int(n) == len(body) {
				flags = flagEndStream
			}
			k.out = appendFrame(k.out, frameData, flags, streamID, body[:n])
			k.sendConn -= n
			k.sendStream -= n
			body = body[n:]
			if flags != 0 {
				return k.flush()
			}
			// Keep the buffer to one frame's worth before writing it.
			if len(k.out) >= k.maxFrame {
				if err := k.flush(); err != nil {
					return err
				}
			}
			continue
		}
		if err := k.flush(); err != nil {
			return err
		}
		if err := k.step(); err != nil {
			return err
		}
	}
	return k.flush()
}

func (k *call) flush() error {
	if len(k.out) == 0 || k.writeFailed {
		k.out = k.out[:0]
		return nil
	}
	_, err := k.conn.Write(k.out)
	k.out = k.out[:0]
	if err == nil {
		return nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return k.connError("write", err)
	}
	// A server that answered and closed (e.g. refusing an oversized
	// request) may have left its answer to read: the answer wins.
	k.writeFailed = true
	for !k.done {
		if k.step() != nil {
			return k.connError("write", err)
		}
	}
	return nil
}

func (k *call) connError(op string, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return ctxStatus(context.DeadlineExceeded)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return statusf(Unavailable, "error reading from server: %v", err)
	}
	return statusf(Unavailable, "connection error: %s: %v", op, err)
}

// step reads and handles one frame. Acknowledgements the server asked
// for wait in k.out while whole frames are buffered: a reply that came in
// one read completes without them and the connection closes, which saves
// the plugin two writes on every call and the server two wake-ups. Before
// a read that may block they go out, so the server never waits for them.
func (k *call) step() error {
	if len(k.out) > 0 && !k.frameBuffered() {
		if err := k.flush(); err != nil {
			return err
		}
	}
	f, buf, err := readFrame(k.r, k.frameBuf)
	k.frameBuf = buf
	if err != nil {
		return k.connError("read", err)
	}
	if k.inHeaders && f.typ != frameContinuation {
		return statusf(Internal, "http2: frame type %d inside a header block", f.typ)
	}
	switch f.typ {
	case frameSettings:
		return k.onSettings(f)
	case framePing:
		if f.flags&flagAck == 0 {
			k.out = appendFrame(k.out, framePing, flagAck, 0, f.payload)
		}
	case frameWindowUpdate:
		return k.onWindowUpdate(f)
	case frameGoAway:
		return k.onGoAway(f)
	case frameRSTStream:
		if f.stream == streamID {
			return rstStatus(f.payload)
		}
	case frameHeaders, frameContinuation:
		if f.stream == streamID {
			return k.onHeaders(f)
		}
	case frameData:
		if f.stream == streamID {
			return k.onData(f)
		}
	}
	return nil
}

func (k *call) onSettings(f frame) error {
	if f.flags&flagAck != 0 {
		return nil
	}
	err := settings(f.payload, func(id uint16, v uint32) {
		switch id {
		case settingInitialWindowSize:
			k.sendStream += int64(v) - k.initialWindow
			k.initialWindow = int64(v)
		case settingMaxFrameSize:
			k.maxFrame = int(v)
		}
	})
	if err != nil {
		return statusf(Internal, "%v", err)
	}
	k.out = appendFrame(k.out, frameSettings, flagAck, 0, nil)
	return nil
}

// frameBuffered reports whether a whole frame is waiting in the read
// buffer, so reading it cannot block.
func (k *call) frameBuffered() bool {
	n := k.r.Buffered()
	if n < frameHeaderLen {
		return false
	}
	h, _ := k.r.Peek(frameHeaderLen)
	return n >= frameHeaderLen+(int(h[0])<<16|int(h[1])<<8|int(h[2]))
}

func (k *call) onWindowUpdate(f frame) error {
	if len(f.payload) != 4 {
		return statusf(Internal, "http2: WINDOW_UPDATE of %d bytes", len(f.payload))
	}
	inc := int64(binary.BigEndian.Uint32(f.payload) & 0x7fffffff)
	switch f.stream {
	case 0:
		k.sendConn += inc
	case streamID:
		k.sendStream += inc
	}
	return nil
}

func (k *call) onGoAway(f frame) error {
	if len(f.payload) < 8 {
		return statusf(Internal, "http2: short GOAWAY")
	}
	last := binary.BigEndian.Uint32(f.payload) & 0x7fffffff
	if last < streamID {
		// The server never processed the call: safe to report unavailable.
		return statusf(Unavailable, "the connection is draining")
	}
	return nil
}

func rstStatus(p []byte) error {
	if len(p) != 4 {
		return statusf(Internal, "http2: RST_STREAM of %d bytes", len(p))
	}
	code := binary.BigEndian.Uint32(p)
	c := Internal
	switch code {
	case errCodeRefusedStream:
		c = Unavailable
	case errCodeCancel:
		c = Canceled
	case errCodeEnhanceYourCalm:
		c = ResourceExhausted
	case errCodeInadequateSecure:
		c = PermissionDenied
	}
	return statusf(c, "stream terminated by RST_STREAM with error code: %d", code)
}

func (k *call) onHeaders(f frame) error {
	p := f.payload
	if f.typ == frameHeaders {
		if k.inHeaders {
			return statusf(Internal, "http2: HEADERS inside a header block")
		}
		var err error
		if p, err = stripPadding(f); err != nil {
			return statusf(Internal, "%v", err)
		}
		if f.flags&flagPriority != 0 {
			if len(p) < 5 {
				return statusf(Internal, "http2: short HEADERS priority")
			}
			p = p[5:]
		}
		k.endOnBlock = f.flags&flagEndStream != 0
		k.headerBuf = k.headerBuf[:0]
	} else if !k.inHeaders {
		return statusf(Internal, "http2: CONTINUATION without HEADERS")
	}
	if len(k.headerBuf)+len(p) > maxHeaderList {
		return statusf(Internal, "header list larger than %d bytes", maxHeaderList)
	}
	k.headerBuf = append(k.headerBuf, p...)
	k.inHeaders = f.flags&flagEndHeaders == 0
	if k.inHeaders {
		return nil
	}
	fields, err := k.hdec.decode(k.headerBuf)
	if err != nil {
		return statusf(Internal, "decode headers: %v", err)
	}
	trailers := k.gotHeaders || k.endOnBlock
	if !k.gotHeaders {
		k.gotHeaders = true
		k.readResponseHeaders(fields)
	}
	if trailers {
		if !k.endOnBlock {
			return statusf(Internal, "trailers without END_STREAM")
		}
		k.readTrailers(fields)
		k.done = true
	}
	return nil
}

func (k *call) readResponseHeaders(fields []headerField) {
	for _, h := range fields {
		switch h.Name {
		case ":status":
			k.httpStatus, _ = strconv.Atoi(h.Value)
		case "content-type":
			k.grpcType = h.Value == "application/grpc" || strings.HasPrefix(h.Value, "application/grpc+") || strings.HasPrefix(h.Value, "application/grpc;")
		}
	}
}

func (k *call) readTrailers(fields []headerField) {
	for _, h := range fields {
		switch {
		case h.Name == "grpc-status":
			k.status, k.hasStatus = h.Value, true
		case h.Name == "grpc-message":
			k.message = decodeGRPCMessage(h.Value)
		case strings.HasPrefix(h.Name, ":") || strings.HasPrefix(h.Name, "grpc-") || h.Name == "content-type":
		default:
			v := h.Value
			if strings.HasSuffix(h.Name, "-bin") {
				if b, err := decodeBinHeader(v); err == nil {
					v = string(b)
				}
			}
			if k.trailer == nil {
				k.trailer = Metadata{}
			}
			k.trailer[h.Name] = append(k.trailer[h.Name], v)
		}
	}
}

func decodeBinHeader(v string) ([]byte, error) {
	if len(v)%4 == 0 {
		return base64.StdEncoding.DecodeString(v)
	}
	return base64.RawStdEncoding.DecodeString(v)
}

func (k *call) onData(f frame) error {
	if !k.gotHeaders {
		return statusf(Internal, "DATA before response headers")
	}
	p, err := stripPadding(f)
	if err != nil {
		return statusf(Internal, "%v", err)
	}
	k.msg = append(k.msg, p...)
	if len(k.msg) >= msgPrefixLen {
		n := binary.BigEndian.Uint32(k.msg[1:])
		if int64(n) > int64(k.maxRecv) {
			return statusf(ResourceExhausted, "grpc: received message larger than max (%d vs. %d)", n, k.maxRecv)
		}
	}
	if f.flags&flagEndStream != 0 {
		return statusf(Internal, "server closed the stream without sending trailers")
	}
	// Give back what we consumed once half the window is used; small
	// replies never get there.
	k.unacked += len(f.payload)
	if k.unacked >= defaultWindow/2 {
		var inc [4]byte
		binary.BigEndian.PutUint32(inc[:], uint32(k.unacked))
		k.out = appendFrame(k.out, frameWindowUpdate, 0, 0, inc[:])
		k.out = appendFrame(k.out, frameWindowUpdate, 0, streamID, inc[:])
		k.unacked = 0
		return k.flush()
	}
	return nil
}

// result turns the finished stream into the reply or its status.
func (k *call) result() ([]byte, error) {
	if !k.hasStatus {
		if k.httpStatus != 200 {
			return nil, statusf(httpStatusCode(k.httpStatus), "unexpected HTTP status code received from server: %d", k.httpStatus)
		}
		if !k.grpcType {
			return nil, statusf(Unknown, "malformed header: missing HTTP content-type")
		}
		return nil, statusf(Internal, "server closed the stream without sending trailers")
	}
	code, err := strconv.ParseUint(k.status, 10, 32)
	if err != nil {
		return nil, statusf(Internal, "transport: malformed grpc-status: %v", err)
	}
	if code != uint64(OK) {
		return nil, &Status{Code: Code(code), Message: k.message}
	}
	body := k.msg
	if len(body) < msgPrefixLen {
		return nil, statusf(Internal, "cardinality violation: received no response message from non-server-streaming RPC")
	}
	if body[0] != 0 {
		return nil, statusf(Internal, "grpc: compressed reply, but the call asked for none")
	}
	n := int(binary.BigEndian.Uint32(body[1:]))
	if len(body)-msgPrefixLen < n {
		return nil, statusf(Internal, "grpc: reply truncated: %d of %d bytes", len(body)-msgPrefixLen, n)
	}
	if len(body)-msgPrefixLen > n {
		return nil, statusf(Internal, "cardinality violation: expected <EOF> for non server-streaming RPCs, but received another message")
	}
	return body[msgPrefixLen:], nil
}

// encodeTimeout writes a grpc-timeout value: at most eight digits, in the
// finest unit that holds the duration, rounded up.
func encodeTimeout(d time.Duration) string {
	units := []struct {
		size time.Duration
		name string
	}{{time.Nanosecond, "n"}, {time.Microsecond, "u"}, {time.Millisecond, "m"}, {time.Second, "S"}, {time.Minute, "M"}, {time.Hour, "H"}}
	for _, u := range units {
		v := (d + u.size - 1) / u.size
		if v <= 99999999 {
			return strconv.FormatInt(int64(v), 10) + u.name
		}
	}
	return "99999999H"
}
