package ipamclient

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// HTTP/2 frame types, flags, settings and error codes the client uses
// (RFC 9113).
const (
	frameData         = 0x0
	frameHeaders      = 0x1
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	framePing         = 0x6
	frameGoAway       = 0x7
	frameWindowUpdate = 0x8
	frameContinuation = 0x9

	flagEndStream  = 0x1
	flagAck        = 0x1
	flagEndHeaders = 0x4
	flagPadded     = 0x8
	flagPriority   = 0x20

	settingInitialWindowSize = 0x4
	settingMaxFrameSize      = 0x5

	errCodeRefusedStream    = 0x7
	errCodeCancel           = 0x8
	errCodeEnhanceYourCalm  = 0xb
	errCodeInadequateSecure = 0xc

	frameHeaderLen = 9
	// defaultWindow and defaultMaxFrame are the protocol's initial values.
	defaultWindow   = 65535
	defaultMaxFrame = 16384
	// maxReadFrame bounds the frames we accept; we never raise
	// SETTINGS_MAX_FRAME_SIZE, so a peer must not send larger ones.
	maxReadFrame = defaultMaxFrame
)

const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

type frame struct {
	typ, flags uint8
	stream     uint32
	payload    []byte
}

// readFrame reads one frame into buf's storage; the payload is valid until
// the next call.
func readFrame(r io.Reader, buf []byte) (frame, []byte, error) {
	var hdr [frameHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return frame{}, buf, err
	}
	n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
	if n > maxReadFrame {
		return frame{}, buf, fmt.Errorf("http2: frame of %d bytes exceeds the %d-byte maximum", n, maxReadFrame)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return frame{}, buf, err
	}
	f := frame{typ: hdr[3], flags: hdr[4], stream: binary.BigEndian.Uint32(hdr[5:]) & 0x7fffffff, payload: buf}
	return f, buf, nil
}

// appendFrame appends a frame header and payload to b.
func appendFrame(b []byte, typ, flags uint8, stream uint32, payload []byte) []byte {
	n := len(payload)
	b = append(b, byte(n>>16), byte(n>>8), byte(n), typ, flags)
	b = binary.BigEndian.AppendUint32(b, stream)
	return append(b, payload...)
}

// stripPadding removes the pad length byte and padding of a DATA or
// HEADERS frame that carries them.
func stripPadding(f frame) ([]byte, error) {
	p := f.payload
	if f.flags&flagPadded == 0 {
		return p, nil
	}
	if len(p) < 1 || int(p[0]) >= len(p) {
		return nil, errors.New("http2: bad padding")
	}
	return p[1 : len(p)-int(p[0])], nil
}

// settings walks a SETTINGS payload.
func settings(p []byte, each func(id uint16, v uint32)) error {
	if len(p)%6 != 0 {
		return errors.New("http2: SETTINGS payload not a multiple of 6 bytes")
	}
	for ; len(p) > 0; p = p[6:] {
		each(binary.BigEndian.Uint16(p), binary.BigEndian.Uint32(p[2:]))
	}
	return nil
}

func appendSetting(b []byte, id uint16, v uint32) []byte {
	b = binary.BigEndian.AppendUint16(b, id)
	return binary.BigEndian.AppendUint32(b, v)
}
