// Package confscan reads the members of a netconf's JSON object without
// reflection. encoding/json's first decode of a struct type in a fresh
// process builds its field cache by reflection and faults in that code:
// about 0.5 ms of every plugin exec on the 2-core bench VM under load
// (bench/README.md, "aws-cni's netconf without reflection"), for a
// netconf of a handful of strings.
//
// It only answers when it can tell for certain what encoding/json would
// decode: valid JSON, member names that are plain ASCII without escapes,
// given once, and no name that encoding/json's case-insensitive matching
// would take for a known one. Anything else reports false, and the caller
// decodes with encoding/json, so values and errors stay encoding/json's.
package confscan

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// Object is the members of one JSON object, each value's raw bytes.
type Object map[string][]byte

// Scan returns the members of the top-level object in data. known are the
// member names the caller reads from it: a member whose name differs from
// one of them only in case makes Scan report false, as encoding/json would
// decode it into that field.
func Scan(data []byte, known ...string) (Object, bool) {
	if !json.Valid(data) {
		return nil, false
	}
	return scanObject(data, known)
}

// Object returns the members of the object that is member key, which must
// be present and an object; known as for Scan.
func (o Object) Object(key string, known ...string) (Object, bool) {
	v, present := o[key]
	if !present {
		return nil, false
	}
	return scanObject(v, known)
}

// String returns member key's string value, "" when key is absent. It
// reports false when the value is not a string or holds an escape or
// bytes that are not UTF-8 (which encoding/json would rewrite).
func (o Object) String(key string) (string, bool) {
	v, present := o[key]
	if !present {
		return "", true
	}
	return plainString(v)
}

// IsString reports whether member key's value is a JSON string (of any
// content); an absent key is not.
func (o Object) IsString(key string) bool {
	v := o[key]
	return len(v) > 0 && v[0] == '"'
}

func plainString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	s := v[1 : len(v)-1]
	if bytes.IndexByte(s, '\\') >= 0 || !utf8.Valid(s) {
		return "", false
	}
	return string(s), true
}

// scanObject reads the object at the start of data, which is valid JSON.
func scanObject(data []byte, known []string) (Object, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, false
	}
	o := Object{}
	i = skipSpace(data, i+1)
	if data[i] == '}' {
		return o, true
	}
	for {
		end := stringEnd(data, i)
		key := data[i+1 : end-1]
		if !plainName(key) {
			return nil, false
		}
		k := string(key)
		if _, twice := o[k]; twice || foldsOnto(k, known) {
			return nil, false
		}
		i = skipSpace(data, skipSpace(data, end)+1) // past the ':'
		vend := valueEnd(data, i)
		o[k] = data[i:vend]
		i = skipSpace(data, vend)
		if data[i] == '}' {
			return o, true
		}
		i = skipSpace(data, i+1) // past the ','
	}
}

// plainName: printable ASCII without escapes, so the bytes are the name.
func plainName(b []byte) bool {
	for _, c := range b {
		if c == '\\' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// foldsOnto reports whether encoding/json would match name to one of
// known by its case-insensitive rule rather than exactly.
func foldsOnto(name string, known []string) bool {
	for _, k := range known {
		if name != k && strings.EqualFold(name, k) {
			return true
		}
	}
	return false
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the index after the string starting at data[i].
func stringEnd(data []byte, i int) int {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(data)
}

// valueEnd returns the index after the value starting at data[i].
func valueEnd(data []byte, i int) int {
	switch data[i] {
	case '"':
		return stringEnd(data, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				j = stringEnd(data, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(data)
	}
	j := i
	for j < len(data) {
		switch data[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return j
		}
		j++
	}
	return j
}
