package ipamclient

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Proto3 wire types (docs/compatibility.md, "gRPC between plugin and ipamd").
const (
	wireVarint = 0
	wireI64    = 1
	wireLen    = 2
	wireI32    = 5
)

// enc appends proto3 fields. Fields are written in field-number order and
// zero values are left out, which is what protobuf-go's Marshal writes, so
// our bytes equal grpc-go clients' bytes.
type enc []byte

func (e *enc) tag(num, typ int) { *e = binary.AppendUvarint(*e, uint64(num)<<3|uint64(typ)) }

func (e *enc) str(num int, s string) {
	if s == "" {
		return
	}
	e.tag(num, wireLen)
	*e = binary.AppendUvarint(*e, uint64(len(s)))
	*e = append(*e, s...)
}

// strs writes vals as the string fields numbered first, first+1, ….
func (e *enc) strs(first int, vals ...string) {
	for i, v := range vals {
		e.str(first+i, v)
	}
}

func (e *enc) boolean(num int, b bool) {
	if !b {
		return
	}
	e.tag(num, wireVarint)
	*e = append(*e, 1)
}

// int32 values are sign-extended to 64 bits: a negative one takes ten bytes.
func (e *enc) int32(num int, v int32) {
	if v == 0 {
		return
	}
	e.tag(num, wireVarint)
	*e = binary.AppendUvarint(*e, uint64(int64(v)))
}

var errTruncated = errors.New("proto: truncated message")

// dec reads proto3 fields one at a time.
type dec struct {
	b []byte
}

// next returns the next field's number and wire type, and for
// length-delimited fields their bytes; varints come back in v.
func (d *dec) next() (num, typ int, v uint64, data []byte, err error) {
	key, n := binary.Uvarint(d.b)
	if n <= 0 {
		return 0, 0, 0, nil, errTruncated
	}
	d.b = d.b[n:]
	if key>>3 == 0 || key>>3 > math.MaxInt32 {
		return 0, 0, 0, nil, fmt.Errorf("proto: invalid field number %d", key>>3)
	}
	num, typ = int(key>>3), int(key&7)
	switch typ {
	case wireVarint:
		v, n = binary.Uvarint(d.b)
		if n <= 0 {
			return 0, 0, 0, nil, errTruncated
		}
		d.b = d.b[n:]
	case wireI64, wireI32:
		size := 8
		if typ == wireI32 {
			size = 4
		}
		if len(d.b) < size {
			return 0, 0, 0, nil, errTruncated
		}
		d.b = d.b[size:]
	case wireLen:
		l, n := binary.Uvarint(d.b)
		if n <= 0 || l > uint64(len(d.b)-n) {
			return 0, 0, 0, nil, errTruncated
		}
		data = d.b[n : n+int(l)]
		d.b = d.b[n+int(l):]
	default:
		// Groups (3, 4) are proto2 only and never in our messages.
		return 0, 0, 0, nil, fmt.Errorf("proto: unsupported wire type %d for field %d", typ, num)
	}
	return num, typ, v, data, nil
}

func (d *dec) more() bool { return len(d.b) > 0 }

// decodeFields calls field for every field of b; field checks the wire type
// of the numbers it knows and ignores the others, as proto3 readers must.
func decodeFields(b []byte, field func(num, typ int, v uint64, data []byte) error) error {
	d := dec{b: b}
	for d.more() {
		num, typ, v, data, err := d.next()
		if err != nil {
			return err
		}
		if err := field(num, typ, v, data); err != nil {
			return err
		}
	}
	return nil
}

func wantType(num, got, want int) error {
	if got != want {
		return fmt.Errorf("proto: field %d has wire type %d, want %d", num, got, want)
	}
	return nil
}
