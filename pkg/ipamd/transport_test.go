package ipamd

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
)

// TestUnaryCallsDrawNoPing: a plugin's call is one small request and one
// small reply. ipamd answers it without a PING of its own (gRPC's
// bandwidth probe), which the client would have to read and acknowledge
// on every call before its reply counts (bench/README.md, figure 21).
func TestUnaryCallsDrawNoPing(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true})
	h.runDaemon()
	conn, err := net.DialTimeout("unix", h.cfg.SocketPath, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	msg, err := proto.Marshal(&healthpb.HealthCheckRequest{Service: HealthService})
	if err != nil {
		t.Fatal(err)
	}
	body := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))
	body = append(body, msg...)
	pings := 0
	for call := range 3 {
		id := uint32(2*call + 1)
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/grpc.health.v1.Health/Check"},
			{":authority", "localhost"}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
			if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
				t.Fatal(err)
			}
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		if err := fr.WriteData(id, true, body); err != nil {
			t.Fatal(err)
		}
		// Read until the call's trailers end its stream, acknowledging
		// what must be acknowledged as a client does.
		for done := false; !done; {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("call %d: %v", call, err)
			}
			switch f := f.(type) {
			case *http2.PingFrame:
				if !f.IsAck() {
					pings++
					if err := fr.WritePing(true, f.Data); err != nil {
						t.Fatal(err)
					}
				}
			case *http2.SettingsFrame:
				if !f.IsAck() {
					if err := fr.WriteSettingsAck(); err != nil {
						t.Fatal(err)
					}
				}
			case *http2.HeadersFrame:
				done = f.StreamID == id && f.StreamEnded()
			case *http2.RSTStreamFrame:
				t.Fatalf("call %d: stream reset: %v", call, f.ErrCode)
			case *http2.GoAwayFrame:
				t.Fatalf("call %d: GOAWAY %v", call, f.ErrCode)
			}
		}
	}
	if pings != 0 {
		t.Errorf("ipamd sent %d PINGs during 3 unary calls, want none", pings)
	}
}
