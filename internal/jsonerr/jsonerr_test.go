package jsonerr_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferryio/ferry/internal/jsonerr"
)

type inner struct {
	N []int `json:"n"`
}

type doc struct {
	S string         `json:"s"`
	I int            `json:"i"`
	U uint           `json:"u"`
	F float64        `json:"f"`
	B bool           `json:"b"`
	L []string       `json:"l"`
	M map[string]int `json:"m"`
	P *inner         `json:"p"`
}

// Every wrong kind for every field is worded without Go names and names
// the field.
func TestMessagesNameFieldsNotGoTypes(t *testing.T) {
	values := []string{`"x"`, `1`, `-1`, `1.5`, `true`, `[1]`, `{"a":1}`, `null`}
	fields := []string{"s", "i", "u", "f", "b", "l", "m", "p"}
	for _, f := range fields {
		for _, v := range values {
			body := `{"` + f + `":` + v + `}`
			err := json.Unmarshal([]byte(body), &doc{})
			if err == nil {
				continue
			}
			field, msg := jsonerr.Describe(err)
			if !strings.HasPrefix(field, f) {
				t.Errorf("%s: field %q", body, field)
			}
			for _, bad := range []string{"Go ", "jsonerr", "doc", "inner", "int64", "float64", "map[", "[]"} {
				if strings.Contains(msg, bad) {
					t.Errorf("%s: message %q names %q", body, msg, bad)
				}
			}
		}
	}
	for _, body := range []string{`{"s":`, `{"s" 1}`, `[`, `{"p":{"n":["x"]}}`} {
		err := json.Unmarshal([]byte(body), &doc{})
		if err == nil {
			t.Fatalf("%s decoded", body)
		}
		_, msg := jsonerr.Describe(err)
		if msg == "" || strings.Contains(msg, "Go ") {
			t.Errorf("%s: message %q", body, msg)
		}
	}
}
