package hdfstest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// The messages of the two protocols are written and read field by field
// with protowire: the field numbers are those of Hadoop's wire protocol, the
// message builders below are this package's own and cover only the subset
// the colinmarc/hdfs client sends and expects. Hadoop's messages are
// proto2, and the client checks required fields on decoding, so every
// builder writes all the required fields of its message.

// msg is a protobuf message being built.
type msg []byte

func (m msg) str(n protowire.Number, s string) msg {
	m = protowire.AppendTag(m, n, protowire.BytesType)
	return protowire.AppendString(m, s)
}

func (m msg) bytes(n protowire.Number, b []byte) msg {
	m = protowire.AppendTag(m, n, protowire.BytesType)
	return protowire.AppendBytes(m, b)
}

func (m msg) uint(n protowire.Number, v uint64) msg {
	m = protowire.AppendTag(m, n, protowire.VarintType)
	return protowire.AppendVarint(m, v)
}

func (m msg) sint(n protowire.Number, v int64) msg {
	m = protowire.AppendTag(m, n, protowire.VarintType)
	return protowire.AppendVarint(m, protowire.EncodeZigZag(v))
}

func (m msg) boolean(n protowire.Number, b bool) msg {
	return m.uint(n, protowire.EncodeBool(b))
}

func (m msg) fixed64(n protowire.Number, v uint64) msg {
	m = protowire.AppendTag(m, n, protowire.Fixed64Type)
	return protowire.AppendFixed64(m, v)
}

func (m msg) fixed32(n protowire.Number, v uint32) msg {
	m = protowire.AppendTag(m, n, protowire.Fixed32Type)
	return protowire.AppendFixed32(m, v)
}

func (m msg) sub(n protowire.Number, s msg) msg {
	m = protowire.AppendTag(m, n, protowire.BytesType)
	return protowire.AppendBytes(m, s)
}

// field is one decoded field value.
type field struct {
	typ protowire.Type
	v   uint64
	b   []byte
}

// fields is a decoded message: the values of each field number in order.
type fields map[protowire.Number][]field

var errMalformed = errors.New("malformed protobuf message")

func decode(b []byte) (fields, error) {
	out := fields{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, errMalformed
		}
		b = b[n:]
		var f field
		f.typ = typ
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			f.v, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.v = uint64(v)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return nil, errMalformed
		}
		b = b[n:]
		out[num] = append(out[num], f)
	}
	return out, nil
}

func (f fields) last(n protowire.Number) (field, bool) {
	v := f[n]
	if len(v) == 0 {
		return field{}, false
	}
	return v[len(v)-1], true
}

func (f fields) str(n protowire.Number) string { v, _ := f.last(n); return string(v.b) }

func (f fields) bytes(n protowire.Number) []byte { v, _ := f.last(n); return v.b }

func (f fields) uint(n protowire.Number) uint64 { v, _ := f.last(n); return v.v }

func (f fields) sint(n protowire.Number) int64 { v, _ := f.last(n); return protowire.DecodeZigZag(v.v) }

func (f fields) boolean(n protowire.Number) bool { v, _ := f.last(n); return v.v != 0 }

// sub decodes an embedded message; a missing one decodes as empty.
func (f fields) sub(n protowire.Number) fields {
	v, ok := f.last(n)
	if !ok {
		return fields{}
	}
	d, err := decode(v.b)
	if err != nil {
		return fields{}
	}
	return d
}

// readDelimited reads one varint-length-prefixed message.
func readDelimited(r io.ByteReader, rr io.Reader, max uint64) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > max {
		return nil, fmt.Errorf("message of %d bytes is too long", n)
	}
	b := make([]byte, n)
	_, err = io.ReadFull(rr, b)
	return b, err
}

// delimited prefixes m with its varint length.
func delimited(m msg) []byte {
	out := protowire.AppendVarint(make([]byte, 0, len(m)+5), uint64(len(m)))
	return append(out, m...)
}

// splitDelimited splits a buffer of varint-length-prefixed messages.
func splitDelimited(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		n, k := protowire.ConsumeVarint(b)
		if k < 0 || n > uint64(len(b)-k) {
			return nil, errMalformed
		}
		out = append(out, b[k:k+int(n)])
		b = b[k+int(n):]
	}
	return out, nil
}
