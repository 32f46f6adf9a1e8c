package keys

import (
	"net/http"
	"testing"
)

// A value of the wrong type is named by its whole path, the index of a
// list item and the key of a map entry included: encoding/json names
// "spec.args.default" for the second argument's default.
func TestAPI_WrongTypeNamesTheItemAndTheEntry(t *testing.T) {
	a := newTestAPI(t)
	for _, c := range []struct {
		spec  map[string]any
		field string
	}{
		{map[string]any{"command": []any{"true"}, "args": []any{map[string]any{"name": "a"}, map[string]any{"name": "b", "default": 5}}}, "spec.args[1].default"},
		{map[string]any{"command": []any{"true"}, "env": map[string]any{"OK": "x", "A": 1}}, "spec.env.A"},
		{map[string]any{"command": []any{"true", 7}}, "spec.command[1]"},
		{map[string]any{"command": []any{"true"}, "args": []any{map[string]any{"name": "a", "default": map[string]any{"x": 1}}}}, "spec.args[0].default"},
		{map[string]any{"command": "true"}, "spec.command"},
	} {
		ans := a.do("PUT", "/v1/jobs/typed", jobDoc("typed", c.spec))
		if ans.Code != http.StatusBadRequest || ans.ErrField() != c.field {
			t.Errorf("%v: HTTP %d field %q (%s), want 400 on %s", c.spec, ans.Code, ans.ErrField(), ans.Body, c.field)
		}
	}
}

func TestPathAt_FollowsNestingAndSkipsKeys(t *testing.T) {
	body := []byte(`{"a":{"b":[1,{"c":"x"},[true,"y"]]},"d":"z"}`)
	for _, c := range []struct {
		after string // the value's text, whose end is the offset
		want  string
	}{{`1`, "a.b[0]"}, {`"x"`, "a.b[1].c"}, {`true`, "a.b[2][0]"}, {`"y"`, "a.b[2][1]"}, {`"z"`, "d"}} {
		i := int64(0)
		for j := range len(body) - len(c.after) + 1 {
			if string(body[j:j+len(c.after)]) == c.after {
				i = int64(j + len(c.after))
				break
			}
		}
		if got := pathAt(body, i); got != c.want {
			t.Errorf("value %s: path %q, want %q", c.after, got, c.want)
		}
	}
}
