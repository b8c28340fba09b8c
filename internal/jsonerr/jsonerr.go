// Package jsonerr words encoding/json decoding errors for the people who
// sent the JSON: it names the field and the JSON kinds involved, never Go
// type or struct names.
package jsonerr

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// Describe returns the field a decoding error is about ("" when it is about
// the document as a whole) and a one-line message without Go names.
func Describe(err error) (field, msg string) {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field, fmt.Sprintf("want %s, got %s", Kind(te.Type), article(te.Value))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "", fmt.Sprintf("not valid JSON at byte %d: %s", se.Offset, se.Error())
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "", "the JSON document ends early"
	}
	msg = strings.TrimPrefix(err.Error(), "json: ")
	if strings.Contains(msg, "Go ") {
		// Any other message of encoding/json that names Go types.
		msg = "cannot be read as JSON of the expected shape"
	}
	return "", msg
}

// Kind names the JSON kind a Go type accepts: "a string", "a number",
// "true or false", "a list", "an object".
func Kind(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a value"
}

// article puts "a"/"an" before encoding/json's value description ("string",
// "number 1.5", "array", "object", "bool").
func article(v string) string {
	switch v {
	case "":
		return "a value of another kind"
	case "bool":
		return "true or false"
	case "array":
		return "a list"
	case "object":
		return "an object"
	}
	return "a " + v
}
