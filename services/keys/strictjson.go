package keys

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/hookrun/hookrun/pkg/resource"
)

// checkKeys walks the first JSON value of body and rejects what
// encoding/json lets through silently when decoding it into a value of type
// t (a pointer to the target):
//
//   - a key given twice in one object (encoding/json keeps the last one),
//     wherever it is, map keys included;
//   - an object key that names a struct field in another case ("Command"
//     for "command"), which encoding/json matches case-insensitively. Keys
//     of maps (env, headers) and of values that decode themselves
//     (json.Unmarshaler) are free-form and not checked for case;
//   - an object key that names no field of its struct, which the decoder
//     (DisallowUnknownFields) refuses too, but without saying where it is.
//
// Malformed JSON is not its concern: the decoder says what is wrong with it
// in its own words, so a body that is not one well-formed JSON value (or
// nests deeper than encoding/json accepts) passes here.
func checkKeys(body []byte, t reflect.Type) error {
	w := keyWalker{dec: json.NewDecoder(bytes.NewReader(body))}
	w.dec.UseNumber() // numbers are skipped, never converted
	if err := w.walk(t, 0); err != nil {
		return nil // malformed: the decoder reports it
	}
	if w.bad != nil {
		return w.bad
	}
	return nil
}

// maxWalkDepth bounds the nesting keyWalker follows: encoding/json refuses
// a body nested deeper than 10000.
const maxWalkDepth = 10000

var errTooDeep = errors.New("nested too deep")

// keyWalker reads a JSON value token by token.
type keyWalker struct {
	dec *json.Decoder
	bad *resource.FieldError // the first key refused; the walk goes on to the end, which may be malformed
	// path holds the segments of the field path to the value being read
	// (".spec", ".env", "[2]"), joined only for an error: a path string per
	// level would cost memory growing with the square of the nesting.
	path []string
}

// refuse records the first key refused, at the current path.
func (w *keyWalker) refuse(format string, a ...any) {
	if w.bad == nil {
		w.bad = &resource.FieldError{Field: strings.TrimPrefix(strings.Join(w.path, ""), "."), Msg: fmt.Sprintf(format, a...)}
	}
}

// walk reads one JSON value, to be decoded into type t (nil: unknown or
// free-form), at w.path (the field path errors name: "spec.env"). It
// returns only the errors of malformed JSON.
func (w *keyWalker) walk(t reflect.Type, depth int) error {
	if depth > maxWalkDepth {
		return errTooDeep
	}
	tok, err := w.dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	t = plainType(t)
	switch d {
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; w.dec.More(); i++ {
			w.path = append(w.path, "["+strconv.Itoa(i)+"]")
			err := w.walk(elem, depth+1)
			w.path = w.path[:len(w.path)-1]
			if err != nil {
				return err
			}
		}
	case '{':
		var fields map[string]reflect.Type
		var elem reflect.Type
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				fields = jsonFields(t)
			case reflect.Map:
				elem = t.Elem()
			}
		}
		seen := map[string]bool{}
		for w.dec.More() {
			tok, err := w.dec.Token()
			if err != nil {
				return err
			}
			key, _ := tok.(string)
			w.path = append(w.path, "."+key)
			if seen[key] {
				w.refuse("duplicate key %q (a key may appear only once in an object)", key)
			}
			seen[key] = true
			child := elem
			if fields != nil {
				ft, exact := fields[key]
				if !exact {
					w.refuseUnknown(key, fields)
				}
				child = ft // nil for an unknown field: its value is not checked
			}
			err = w.walk(child, depth+1)
			w.path = w.path[:len(w.path)-1]
			if err != nil {
				return err
			}
		}
	}
	_, err = w.dec.Token() // the closing ] or }
	return err
}

// refuseUnknown refuses key, a field struct type fields has not, at its
// path: encoding/json's own error names the key only, and
// "spec.auth.none.x" says where the typo is where "x" does not.
func (w *keyWalker) refuseUnknown(key string, fields map[string]reflect.Type) {
	for name := range fields {
		if strings.EqualFold(name, key) {
			w.refuse("unknown field %q (field names are case-sensitive: did you mean %q?)", key, name)
			return
		}
	}
	w.refuse("unknown field %q (check the spelling against API.md)", key)
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// plainType is t without pointers, or nil when its JSON has no structure
// known here: an interface, or a type that decodes itself.
func plainType(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface {
		return nil
	}
	p := reflect.PointerTo(t)
	if t.Implements(jsonUnmarshaler) || p.Implements(jsonUnmarshaler) || t.Implements(textUnmarshaler) || p.Implements(textUnmarshaler) {
		return nil
	}
	return t
}

var jsonFieldsCache sync.Map // reflect.Type → map[string]reflect.Type

// jsonFields maps the exact JSON names of struct type t's fields, as
// encoding/json names them (the json tag's name, else the Go name; the
// fields of embedded structs without a name promoted, the shallower field
// winning), to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := jsonFieldsCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	fields := map[string]reflect.Type{}
	visited := map[reflect.Type]bool{t: true}
	for level := []reflect.Type{t}; len(level) > 0; {
		var next []reflect.Type
		for _, st := range level {
			for i := range st.NumField() {
				f := st.Field(i)
				tag := f.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, _, _ := strings.Cut(tag, ",")
				if f.Anonymous {
					ft := f.Type
					if ft.Kind() == reflect.Pointer {
						ft = ft.Elem()
					}
					if name == "" && ft.Kind() == reflect.Struct {
						if !visited[ft] {
							visited[ft] = true
							next = append(next, ft)
						}
						continue
					}
					if !f.IsExported() && ft.Kind() != reflect.Struct {
						continue
					}
				} else if !f.IsExported() {
					continue
				}
				if name == "" {
					name = f.Name
				}
				if _, taken := fields[name]; !taken {
					fields[name] = f.Type
				}
			}
		}
		level = next
	}
	jsonFieldsCache.Store(t, fields)
	return fields
}

// pathAt names the JSON value of body that ends at or after byte offset
// ("spec.args[1].default"), where encoding/json reported a value of the
// wrong type: its UnmarshalTypeError names the field without the index of
// a list item or the key of a map entry ("spec.args.default", "spec.env").
// "" when body cannot be read that far.
func pathAt(body []byte, offset int64) string {
	type frame struct {
		obj     bool
		key     string
		idx     int
		wantKey bool
	}
	var stack []frame
	render := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.obj {
				b.WriteString("." + f.key)
			} else {
				b.WriteString("[" + strconv.Itoa(f.idx) + "]")
			}
		}
		return strings.TrimPrefix(b.String(), ".")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for depth := 0; depth <= maxWalkDepth; {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		d, isDelim := tok.(json.Delim)
		if isDelim && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			depth--
			continue
		}
		if n := len(stack); n > 0 {
			top := &stack[n-1]
			if top.obj && top.wantKey {
				top.key, _ = tok.(string)
				top.wantKey = false
				continue
			}
			if top.obj {
				top.wantKey = true
			} else {
				top.idx++
			}
		}
		if dec.InputOffset() >= offset {
			return render()
		}
		if isDelim {
			stack = append(stack, frame{obj: d == '{', wantKey: d == '{', idx: -1})
			depth++
		}
	}
	return ""
}
