package ipamclient

import (
	"bufio"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// A server may hold its answer until the client acknowledges its
// SETTINGS (none we know does, but HTTP/2 allows waiting): the client
// keeps acknowledgements back only while whole frames are buffered, so
// the call completes instead of waiting for its deadline.
func TestCallAcknowledgesSettingsBeforeBlocking(t *testing.T) {
	socket := socketPath(t)
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	served := make(chan error, 1)
	go func() { served <- serveAfterSettingsAck(ln) }()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := (&Client{Socket: socket}).Check(ctx, "")
	if err != nil || st != HealthServing {
		t.Fatalf("Check = %v, %v; want SERVING", st, err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// serveAfterSettingsAck answers one health check, sending its SETTINGS
// only after the request and its reply only after the client's ack.
func serveAfterSettingsAck(ln net.Listener) error {
	conn, err := ln.Accept()
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	if _, err := io.ReadFull(r, make([]byte, len(clientPreface))); err != nil {
		return err
	}
	var buf []byte
	for { // the request, up to its END_STREAM
		var f frame
		if f, buf, err = readFrame(r, buf); err != nil {
			return err
		}
		if f.typ == frameData && f.flags&flagEndStream != 0 {
			break
		}
	}
	if _, err := conn.Write(appendFrame(nil, frameSettings, 0, 0, appendSetting(nil, settingMaxFrameSize, defaultMaxFrame))); err != nil {
		return err
	}
	for {
		var f frame
		if f, buf, err = readFrame(r, buf); err != nil {
			return err
		}
		if f.typ == frameSettings && f.flags&flagAck != 0 {
			break
		}
	}
	var out []byte
	hdr := appendHeader(appendHeader(nil, ":status", "200"), "content-type", "application/grpc")
	out = appendFrame(out, frameHeaders, flagEndHeaders, streamID, hdr)
	msg := []byte{0, 0, 0, 0, 2, 0x08, byte(HealthServing)} // HealthCheckResponse{status: SERVING}
	out = appendFrame(out, frameData, 0, streamID, msg)
	out = appendFrame(out, frameHeaders, flagEndHeaders|flagEndStream, streamID, appendHeader(nil, "grpc-status", "0"))
	_, err = conn.Write(out)
	return err
}
