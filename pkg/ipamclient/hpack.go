package ipamclient

import (
	"errors"
	"fmt"
)

// HPACK (RFC 7541), as much as a client of one unary call needs: requests
// are encoded as literals that the server does not index, which every
// decoder accepts; replies are decoded in full (static and dynamic table,
// Huffman strings), as a grpc-go server indexes and compresses its
// headers. It replaces golang.org/x/net/http2/hpack, whose package
// initialisation and first Huffman decode (a tree of 2 KB nodes) cost the
// plugin a fresh process's page faults and start-up time on every ADD.

// maxDynamicTable is the dynamic table size we allow the server: the
// protocol's default, since our SETTINGS never change it.
const maxDynamicTable = 4096

// headerField is one decoded header.
type headerField struct {
	Name, Value string
}

// appendHeader appends name: value as a literal header field without
// indexing, with a new name and no Huffman coding (RFC 7541, 6.2.2).
func appendHeader(b []byte, name, value string) []byte {
	b = append(b, 0)
	b = appendHpackInt(b, 7, 0, uint64(len(name)))
	b = append(b, name...)
	b = appendHpackInt(b, 7, 0, uint64(len(value)))
	return append(b, value...)
}

// appendHpackInt appends v with an n-bit prefix; first holds the bits
// above the prefix (RFC 7541, 5.1).
func appendHpackInt(b []byte, n uint, first byte, v uint64) []byte {
	limit := uint64(1)<<n - 1
	if v < limit {
		return append(b, first|byte(v))
	}
	b = append(b, first|byte(limit))
	v -= limit
	for v >= 128 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// headerDecoder decodes the header blocks of one connection; its dynamic
// table lives from block to block.
type headerDecoder struct {
	dyn     []headerField // oldest first
	dynSize int
	maxSize int
	// maxString bounds a decoded string.
	maxString int
}

func newHeaderDecoder(maxString int) *headerDecoder {
	return &headerDecoder{maxSize: maxDynamicTable, maxString: maxString}
}

var errHpack = errors.New("hpack: invalid header block")

// decode returns the fields of a complete header block.
func (d *headerDecoder) decode(p []byte) ([]headerField, error) {
	var fields []headerField
	for len(p) > 0 {
		b := p[0]
		switch {
		case b&0x80 != 0: // indexed field
			idx, rest, err := readHpackInt(p, 7)
			if err != nil {
				return nil, err
			}
			f, err := d.at(idx)
			if err != nil {
				return nil, err
			}
			fields, p = append(fields, f), rest
		case b&0xc0 == 0x40: // literal with incremental indexing
			f, rest, err := d.literal(p, 6)
			if err != nil {
				return nil, err
			}
			d.add(f)
			fields, p = append(fields, f), rest
		case b&0xe0 == 0x20: // dynamic table size update (accepted anywhere, as grpc-go does)
			size, rest, err := readHpackInt(p, 5)
			if err != nil {
				return nil, err
			}
			if size > maxDynamicTable {
				return nil, fmt.Errorf("%w: table size %d above %d", errHpack, size, maxDynamicTable)
			}
			d.maxSize = int(size)
			d.evict(0)
			p = rest
		default: // literal without indexing (0000) or never indexed (0001)
			f, rest, err := d.literal(p, 4)
			if err != nil {
				return nil, err
			}
			fields, p = append(fields, f), rest
		}
	}
	return fields, nil
}

// literal reads a literal field whose name index has an n-bit prefix.
func (d *headerDecoder) literal(p []byte, n uint) (headerField, []byte, error) {
	idx, p, err := readHpackInt(p, n)
	if err != nil {
		return headerField{}, nil, err
	}
	var f headerField
	if idx == 0 {
		if f.Name, p, err = d.str(p); err != nil {
			return headerField{}, nil, err
		}
	} else {
		nf, err := d.at(idx)
		if err != nil {
			return headerField{}, nil, err
		}
		f.Name = nf.Name
	}
	if f.Value, p, err = d.str(p); err != nil {
		return headerField{}, nil, err
	}
	return f, p, nil
}

// str reads a string literal (RFC 7541, 5.2).
func (d *headerDecoder) str(p []byte) (string, []byte, error) {
	if len(p) == 0 {
		return "", nil, fmt.Errorf("%w: truncated string", errHpack)
	}
	huff := p[0]&0x80 != 0
	n, p, err := readHpackInt(p, 7)
	if err != nil {
		return "", nil, err
	}
	if n > uint64(len(p)) {
		return "", nil, fmt.Errorf("%w: truncated string", errHpack)
	}
	raw := p[:n]
	p = p[n:]
	if !huff {
		if len(raw) > d.maxString {
			return "", nil, fmt.Errorf("%w: string longer than %d bytes", errHpack, d.maxString)
		}
		return string(raw), p, nil
	}
	s, err := huffmanDecode(raw, d.maxString)
	return s, p, err
}

// at returns the field at a 1-based index of the static table followed
// by the dynamic table, newest first.
func (d *headerDecoder) at(idx uint64) (headerField, error) {
	switch {
	case idx == 0:
		return headerField{}, fmt.Errorf("%w: index 0", errHpack)
	case idx <= uint64(len(staticTable)):
		return staticTable[idx-1], nil
	}
	i := idx - uint64(len(staticTable))
	if i > uint64(len(d.dyn)) {
		return headerField{}, fmt.Errorf("%w: index %d beyond the tables", errHpack, idx)
	}
	return d.dyn[uint64(len(d.dyn))-i], nil
}

func entrySize(f headerField) int { return len(f.Name) + len(f.Value) + 32 }

// add inserts f as the newest entry, evicting the oldest to make room; an
// entry larger than the table empties it (RFC 7541, 4.4).
func (d *headerDecoder) add(f headerField) {
	n := entrySize(f)
	d.evict(n)
	if n > d.maxSize {
		return
	}
	d.dyn = append(d.dyn, f)
	d.dynSize += n
}

// evict drops the oldest entries until room bytes fit.
func (d *headerDecoder) evict(room int) {
	i := 0
	for d.dynSize+room > d.maxSize && i < len(d.dyn) {
		d.dynSize -= entrySize(d.dyn[i])
		i++
	}
	d.dyn = d.dyn[i:]
}

// readHpackInt reads an integer with an n-bit prefix (RFC 7541, 5.1).
func readHpackInt(p []byte, n uint) (uint64, []byte, error) {
	if len(p) == 0 {
		return 0, nil, fmt.Errorf("%w: truncated integer", errHpack)
	}
	limit := uint64(1)<<n - 1
	v := uint64(p[0]) & limit
	p = p[1:]
	if v < limit {
		return v, p, nil
	}
	for shift := uint(0); ; shift += 7 {
		// Anything above 2^28 is no header of ours and only an attack.
		if len(p) == 0 || shift > 21 {
			return 0, nil, fmt.Errorf("%w: bad integer", errHpack)
		}
		b := p[0]
		p = p[1:]
		v += uint64(b&0x7f) << shift
		if b&0x80 == 0 {
			return v, p, nil
		}
	}
}

// staticTable is RFC 7541 Appendix A.
var staticTable = [...]headerField{
	{":authority", ""},
	{":method", "GET"},
	{":method", "POST"},
	{":path", "/"},
	{":path", "/index.html"},
	{":scheme", "http"},
	{":scheme", "https"},
	{":status", "200"},
	{":status", "204"},
	{":status", "206"},
	{":status", "304"},
	{":status", "400"},
	{":status", "404"},
	{":status", "500"},
	{"accept-charset", ""},
	{"accept-encoding", "gzip, deflate"},
	{"accept-language", ""},
	{"accept-ranges", ""},
	{"accept", ""},
	{"access-control-allow-origin", ""},
	{"age", ""},
	{"allow", ""},
	{"authorization", ""},
	{"cache-control", ""},
	{"content-disposition", ""},
	{"content-encoding", ""},
	{"content-language", ""},
	{"content-length", ""},
	{"content-location", ""},
	{"content-range", ""},
	{"content-type", ""},
	{"cookie", ""},
	{"date", ""},
	{"etag", ""},
	{"expect", ""},
	{"expires", ""},
	{"from", ""},
	{"host", ""},
	{"if-match", ""},
	{"if-modified-since", ""},
	{"if-none-match", ""},
	{"if-range", ""},
	{"if-unmodified-since", ""},
	{"last-modified", ""},
	{"link", ""},
	{"location", ""},
	{"max-forwards", ""},
	{"proxy-authenticate", ""},
	{"proxy-authorization", ""},
	{"range", ""},
	{"referer", ""},
	{"refresh", ""},
	{"retry-after", ""},
	{"server", ""},
	{"set-cookie", ""},
	{"strict-transport-security", ""},
	{"transfer-encoding", ""},
	{"user-agent", ""},
	{"vary", ""},
	{"via", ""},
	{"www-authenticate", ""},
}
