package filter

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"
)

// maxStringBytes is the most a string made by join or replace may hold in
// an evaluation whose cost limit is limit: half the limit, about four
// times the body (CostPerBodyByte), at least 500 KB. A filter answers yes
// or no; a string many times its delivery is no step towards that.
func maxStringBytes(limit uint64) int { return int(limit / 2) }

// boundStrings decorates the calls of ext.Strings' join and replace so that
// the size of what they would make is checked before it is made. cel-go
// charges a call's cost once it has returned: a sender's long separator
// between a sender's many parts (list.join(sep), or a list of the same long
// string made by map), or a long replacement for each of many matches
// (s.replace("a", body.s)), built results growing with the square of the
// body (375 MB for a 28 KB body) before the cost limit refused them, and a
// body of 1 MiB could exhaust a dispatcher's memory, then the next one's.
func boundStrings(max int) interpreter.InterpretableDecoratorV2 {
	return func(i interpreter.InterpretableV2) (interpreter.InterpretableV2, error) {
		call, ok := i.(interpreter.InterpretableCall)
		if !ok {
			return i, nil
		}
		switch call.OverloadID() {
		case "list_join", "list_join_string", "string_replace_string_string", "string_replace_string_string_int":
			return &boundedCall{InterpretableCall: call, max: max}, nil
		}
		if call.Function() == "bytes" && (call.OverloadID() == "" || call.OverloadID() == overloads.StringToBytes) && len(call.Args()) == 1 {
			// bytes() of a dyn value (body.x) is dispatched at run time,
			// with no overload id for the cost tracker to charge by size.
			return &bytesCall{InterpretableCall: call}, nil
		}
		return i, nil
	}
}

// chargedBySize charges the calls that make a string or bytes from a
// sender's values by the size of what they made: cel-go charges format by
// its format string and bytes() by a constant, so a comprehension
// formatting a megabyte of a sender's text once per element of a list of
// theirs allocated gigabytes, unstopped by the cost limit. Charged by
// size, the cost limit stops such a filter once it has made about the
// limit's worth.
var chargedBySize = []cost.TrackerOption{
	cost.OverloadTracker(overloads.ExtFormatString, bySize),
	cost.OverloadTracker(overloads.StringToBytes, bySize),
}

// bySize is the cost of a call that made result: a unit a byte.
func bySize(_ []ref.Val, result ref.Val) *uint64 {
	var n uint64 = 1
	switch r := result.(type) {
	case types.String:
		n += uint64(len(r))
	case types.Bytes:
		n += uint64(len(r))
	}
	return &n
}

// bytesCall is bytes(x), charged as string_to_bytes (bySize) whichever way
// it was dispatched.
type bytesCall struct {
	interpreter.InterpretableCall
}

func (c *bytesCall) Eval(act interpreter.Activation) ref.Val {
	return interpreter.EvalActivation(act, c.Exec)
}

func (c *bytesCall) Exec(f *interpreter.ExecutionFrame) ref.Val {
	v := c.Args()[0].Exec(f)
	if types.IsUnknownOrError(v) {
		return v
	}
	res := v.ConvertToType(types.BytesType)
	if costs := f.CostTracker(); costs != nil {
		costs.EvalUnary(f, c.ID(), chargedAs{c.InterpretableCall, overloads.StringToBytes}, v, res)
	}
	return res
}

// chargedAs is a call as the cost tracker should see it: under overload id.
type chargedAs struct {
	interpreter.InterpretableCall
	id string
}

func (c chargedAs) OverloadID() string { return c.id }

// boundedCall is a join or replace call that refuses to make a string over
// max bytes. It evaluates its arguments once and makes the result itself,
// as ext.Strings does, then has the evaluation's cost tracker charge it as
// the call it replaces (its Function and OverloadID).
type boundedCall struct {
	interpreter.InterpretableCall
	max int
}

func (c *boundedCall) Eval(act interpreter.Activation) ref.Val {
	return interpreter.EvalActivation(act, c.Exec)
}

func (c *boundedCall) Exec(f *interpreter.ExecutionFrame) ref.Val {
	args := c.Args()
	vals := make([]ref.Val, len(args))
	for i, a := range args {
		v := a.Exec(f)
		if types.IsUnknownOrError(v) {
			return v
		}
		vals[i] = v
	}
	var res ref.Val
	if c.OverloadID() == "list_join" || c.OverloadID() == "list_join_string" {
		res = c.join(vals)
	} else {
		res = c.replace(vals)
	}
	if costs := f.CostTracker(); costs != nil {
		costs.EvalVarArgs(f, c.ID(), c, vals, res)
	}
	return res
}

func (c *boundedCall) join(vals []ref.Val) ref.Val {
	l, ok := vals[0].(traits.Lister)
	if !ok {
		return types.MaybeNoSuchOverloadErr(vals[0])
	}
	sep := ""
	if len(vals) > 1 {
		s, ok := vals[1].(types.String)
		if !ok {
			return types.MaybeNoSuchOverloadErr(vals[1])
		}
		sep = string(s)
	}
	n, _ := l.Size().(types.Int)
	parts := make([]string, n)
	size := 0
	for i := range parts {
		e := l.Get(types.Int(i))
		s, ok := e.(types.String)
		if !ok {
			return types.NewErr("join: invalid input: %v", e)
		}
		parts[i] = string(s)
		size += len(s)
	}
	if n > 1 {
		size += len(sep) * int(n-1)
	}
	if size > c.max {
		return tooLong("join", size, c.max)
	}
	return types.String(strings.Join(parts, sep))
}

func (c *boundedCall) replace(vals []ref.Val) ref.Val {
	s, ok1 := vals[0].(types.String)
	old, ok2 := vals[1].(types.String)
	repl, ok3 := vals[2].(types.String)
	if !ok1 || !ok2 || !ok3 {
		return types.NewErr("no such overload: replace")
	}
	n := -1
	if len(vals) > 3 {
		i, ok := vals[3].(types.Int)
		if !ok {
			return types.MaybeNoSuchOverloadErr(vals[3])
		}
		n = int(i)
	}
	matches := strings.Count(string(s), string(old))
	if old == "" {
		matches = utf8.RuneCountInString(string(s)) + 1
	}
	if n >= 0 {
		matches = min(matches, n)
	}
	if size := len(s) + matches*(len(repl)-len(old)); size > c.max {
		return tooLong("replace", size, c.max)
	}
	return types.String(strings.Replace(string(s), string(old), string(repl), n))
}

func tooLong(fn string, size, max int) ref.Val {
	return types.WrapErr(fmt.Errorf("%s would make a string of %d bytes, over the %d a filter's string may hold for a body of this size", fn, size, max))
}
