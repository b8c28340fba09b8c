// Package bytesjson is Ferry's Temporal data converter: JSON in which every
// string keeps its exact bytes.
//
// Names are bytes. A file name on Linux, an S3 key or an HDFS path may hold
// bytes that are not UTF-8 (a Latin-1 "é" is the single byte 0xE9), and Go's
// encoding/json replaces such bytes with U+FFFD, so a name that crossed a
// workflow, activity or heartbeat payload would come back as another name.
// The converter here writes a string that is valid UTF-8 as the plain JSON
// string it always was, and only a string that is not (or that happens to
// start with the marker) as Marker followed by the standard base64 of its
// bytes. Decoding reverses it. Histories written without this converter
// decode unchanged, and payloads that hold only UTF-8 strings are
// byte-for-byte what the SDK's default converter writes.
//
// Every Temporal client of Ferry (and of a Go program that drives Ferry's
// workflows, see the README) is dialled with DataConverter().
package bytesjson

import (
	"bytes"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// Marker starts the JSON form of a string that is not valid UTF-8: the
// marker, then the base64 (RFC 4648, padded) of the string's bytes. It
// starts with a NUL byte, which no path, key or name Ferry accepts holds.
const Marker = "\x00b64:"

// markerJSON is how encoding/json writes Marker inside a JSON string.
var markerJSON = []byte(`"\u0000b64:`)

// Encode returns the form of s that survives encoding/json: s itself when
// it is valid UTF-8, else Marker + base64 of its bytes.
func Encode(s string) string {
	if utf8.ValidString(s) && !strings.HasPrefix(s, Marker) {
		return s
	}
	return Marker + base64.StdEncoding.EncodeToString([]byte(s))
}

// Decode reverses Encode. A string that does not carry the marker, or whose
// base64 is damaged, is returned as it is.
func Decode(s string) string {
	if !strings.HasPrefix(s, Marker) {
		return s
	}
	b, err := base64.StdEncoding.DecodeString(s[len(Marker):])
	if err != nil {
		return s
	}
	return string(b)
}

// DataConverter is the SDK's default data converter with its JSON payload
// converter replaced by PayloadConverter.
func DataConverter() converter.DataConverter {
	return converter.NewCompositeDataConverter(
		converter.NewNilPayloadConverter(),
		converter.NewByteSlicePayloadConverter(),
		converter.NewProtoJSONPayloadConverter(),
		converter.NewProtoPayloadConverter(),
		PayloadConverter{},
	)
}

// PayloadConverter is a "json/plain" payload converter whose strings keep
// their bytes (see the package comment).
type PayloadConverter struct{}

var _ converter.PayloadConverter = PayloadConverter{}

// ToPayload encodes value as JSON, marking strings that are not UTF-8.
func (PayloadConverter) ToPayload(value any) (*commonpb.Payload, error) {
	if v, changed := encodeValue(reflect.ValueOf(value), 0); changed {
		value = v.Interface()
	}
	data, err := json.Marshal(value)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", converter.ErrUnableToEncode, err.Error())
	}
	return &commonpb.Payload{
		Metadata: map[string][]byte{converter.MetadataEncoding: []byte(converter.MetadataEncodingJSON)},
		Data:     data,
	}, nil
}

// FromPayload decodes a JSON payload into valuePtr and restores marked
// strings.
func (PayloadConverter) FromPayload(payload *commonpb.Payload, valuePtr any) error {
	data := payload.GetData()
	if err := json.Unmarshal(data, valuePtr); err != nil {
		return fmt.Errorf("%w: %s", converter.ErrUnableToDecode, err.Error())
	}
	if bytes.Contains(data, markerJSON) {
		decodeValue(reflect.ValueOf(valuePtr), 0)
	}
	return nil
}

// ToString shows the payload's JSON.
func (PayloadConverter) ToString(payload *commonpb.Payload) string { return string(payload.GetData()) }

// Encoding is "json/plain", the encoding of the SDK's JSON converter, so
// either can read what the other wrote.
func (PayloadConverter) Encoding() string { return converter.MetadataEncodingJSON }

// maxDepth bounds the walk over a value (a payload is never that deep;
// a cyclic pointer graph would not encode anyway).
const maxDepth = 100

var (
	jsonMarshaler   = reflect.TypeFor[json.Marshaler]()
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textMarshaler   = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// ownEncoding reports a type that encodes itself (time.Time, …): its
// strings are its own business.
func ownEncoding(t reflect.Type) bool {
	if t.Kind() == reflect.String {
		return false
	}
	pt := reflect.PointerTo(t)
	return t.Implements(jsonMarshaler) || pt.Implements(jsonMarshaler) || t.Implements(textMarshaler) || pt.Implements(textMarshaler) ||
		pt.Implements(jsonUnmarshaler) || pt.Implements(textUnmarshaler)
}

// encodeValue returns v with every string that needs it replaced by its
// Encode form, copying (never changing) what v points to, and whether
// anything changed.
func encodeValue(v reflect.Value, depth int) (reflect.Value, bool) {
	if !v.IsValid() || depth > maxDepth {
		return v, false
	}
	switch v.Kind() {
	case reflect.String:
		s := v.String()
		e := Encode(s)
		if e == s {
			return v, false
		}
		out := reflect.New(v.Type()).Elem()
		out.SetString(e)
		return out, true
	case reflect.Pointer:
		if v.IsNil() || ownEncoding(v.Type().Elem()) {
			return v, false
		}
		e, changed := encodeValue(v.Elem(), depth+1)
		if !changed {
			return v, false
		}
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(e)
		return p, true
	case reflect.Interface:
		if v.IsNil() {
			return v, false
		}
		e, changed := encodeValue(v.Elem(), depth+1)
		if !changed {
			return v, false
		}
		out := reflect.New(v.Type()).Elem()
		out.Set(e)
		return out, true
	case reflect.Struct:
		if ownEncoding(v.Type()) {
			return v, false
		}
		var out reflect.Value
		for i := 0; i < v.NumField(); i++ {
			if !v.Type().Field(i).IsExported() {
				continue
			}
			e, changed := encodeValue(v.Field(i), depth+1)
			if !changed {
				continue
			}
			if !out.IsValid() {
				out = reflect.New(v.Type()).Elem()
				out.Set(v)
			}
			out.Field(i).Set(e)
		}
		if !out.IsValid() {
			return v, false
		}
		return out, true
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 || (v.Kind() == reflect.Slice && v.IsNil()) || ownEncoding(v.Type()) {
			return v, false // []byte is base64 already
		}
		var out reflect.Value
		for i := 0; i < v.Len(); i++ {
			e, changed := encodeValue(v.Index(i), depth+1)
			if !changed {
				continue
			}
			if !out.IsValid() {
				if v.Kind() == reflect.Slice {
					out = reflect.MakeSlice(v.Type(), v.Len(), v.Len())
					reflect.Copy(out, v)
				} else {
					out = reflect.New(v.Type()).Elem()
					out.Set(v)
				}
			}
			out.Index(i).Set(e)
		}
		if !out.IsValid() {
			return v, false
		}
		return out, true
	case reflect.Map:
		if v.IsNil() || ownEncoding(v.Type()) {
			return v, false
		}
		changed := false
		iter := v.MapRange()
		for iter.Next() {
			_, kc := encodeValue(iter.Key(), depth+1)
			_, vc := encodeValue(iter.Value(), depth+1)
			if kc || vc {
				changed = true
				break
			}
		}
		if !changed {
			return v, false
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		iter = v.MapRange()
		for iter.Next() {
			k, _ := encodeValue(iter.Key(), depth+1)
			e, _ := encodeValue(iter.Value(), depth+1)
			out.SetMapIndex(k, e)
		}
		return out, true
	}
	return v, false
}

// decodeValue replaces, in place, every marked string reachable from v.
func decodeValue(v reflect.Value, depth int) {
	if !v.IsValid() || depth > maxDepth {
		return
	}
	switch v.Kind() {
	case reflect.String:
		if s := v.String(); v.CanSet() && strings.HasPrefix(s, Marker) {
			v.SetString(Decode(s))
		}
	case reflect.Pointer:
		if !v.IsNil() && !ownEncoding(v.Type().Elem()) {
			decodeValue(v.Elem(), depth+1)
		}
	case reflect.Interface:
		if v.IsNil() || !v.CanSet() {
			return
		}
		e := reflect.New(v.Elem().Type()).Elem()
		e.Set(v.Elem())
		decodeValue(e, depth+1)
		v.Set(e)
	case reflect.Struct:
		if ownEncoding(v.Type()) {
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				decodeValue(v.Field(i), depth+1)
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 || ownEncoding(v.Type()) {
			return
		}
		for i := 0; i < v.Len(); i++ {
			decodeValue(v.Index(i), depth+1)
		}
	case reflect.Map:
		if v.IsNil() || ownEncoding(v.Type()) {
			return
		}
		keys := v.MapKeys()
		for _, k := range keys {
			nk := reflect.New(k.Type()).Elem()
			nk.Set(k)
			decodeValue(nk, depth+1)
			nv := reflect.New(v.Type().Elem()).Elem()
			nv.Set(v.MapIndex(k))
			decodeValue(nv, depth+1)
			if !nk.Equal(k) {
				v.SetMapIndex(k, reflect.Value{})
			}
			v.SetMapIndex(nk, nv)
		}
	}
}
