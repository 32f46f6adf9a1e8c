package argtemplate

import (
	"encoding/json"
	"errors"
	"strings"
	"text/template/parse"
)

// Rendering a template has no deadline: the dispatcher and the executor
// render inline, and text/template cannot be stopped. So an argument's
// renderings, and a body template's, get a budget of work, counted in
// bytes and sized from the delivery, and fail once it is spent. validate
// bounds how often a template can loop; the budget bounds what each pass
// costs, which validation cannot see:
// {{ range .body.a }}{{ if eq (json $.body) "" }}{{ end }}{{ end }}
// serialises the whole body once per item and prints nothing, so the
// output cap never trips.
//
// What is counted: every byte written, and every write (stepWork: a range
// iteration writes an empty text, see meterRanges); what a function makes
// (json, toString, join, print, printf, println, html, js, urlquery), walks
// (lower, upper, trim; print's objects before fmt renders them), compares
// (eq and the orderings) or hashes (index's keys); a header looked up by a
// name it is not stored under; a map's keys, sorted before a range over it.
// What is not: text/template's own steps (fields, variables, if, and the
// constant-time built-ins len, slice, and, or, not), each run at most once
// per counted iteration, so they cost at most the template's size times
// the counted work; and the String and Float64 methods, which validate
// allows only outside ranges, where each runs once.
const (
	// baseWork is every rendering's allowance, whatever the delivery:
	// generous for templates that render a small delivery many times
	// over, or print a body template's MaxBodyBytes.
	baseWork = 8 << 20
	// workPerByte adds to baseWork per byte of the delivery (body,
	// headers, query): a large body may be walked a few times over, as
	// {{ json .body }} and a range calling a function or two per item
	// do.
	workPerByte = 16
	// stepWork is a write's cost beside its bytes, a range iteration's
	// (an iteration that prints nothing costs text/template about what
	// serialising a few bytes does), and a list element's when weighing.
	stepWork = 8
	// callWork is a metered function call's cost beside the bytes it
	// handles, and a map entry's when weighing or sorting its keys:
	// reflection makes a call cost about what serialising a hundred
	// bytes does.
	callWork = 64
)

// ErrTooMuchWork is returned when rendering an argument value or a body
// template would do more work than its budget: it reads, renders or
// compares the delivery too many times over. Like ErrValueTooLarge it is an
// error whether or not the argument has a default.
var ErrTooMuchWork = errors.New("rendering does too much work for this delivery: the template reads or renders its data too many times over (as json $.body within a range does)")

// workFor is the budget of one rendering against a delivery of size bytes.
func workFor(size int) int { return baseWork + workPerByte*size }

// budget is the work left to the renderings of one argument value or
// body template. Their functions and writer share it; it is not safe for
// concurrent use.
type budget struct {
	left int
}

// charge spends n and fails once the budget is spent; the error stops the
// rendering. Most work is charged once done, by the length of what it
// made (measuring it first would cost as much again), so the call that
// overspends still runs: one call, at most a few times the delivery.
func (b *budget) charge(n int) error {
	b.left -= n
	if b.left < 0 {
		return ErrTooMuchWork
	}
	return nil
}

// weigh charges for what fmt does with v before printing it: it walks an
// object or a list, and renders a jsonObject or jsonList as JSON (whose
// length it may then cut: printf "%.0s" $.body). Strings, numbers and
// booleans cost nothing here: fmt formats them in the length of what it
// writes, which the callers charge. The walk itself stops when the budget
// is spent.
func (b *budget) weigh(v any) error {
	switch v := v.(type) {
	case jsonObject:
		return b.weighMap(v)
	case map[string]any:
		return b.weighMap(v)
	case jsonList:
		return b.weighList(v)
	case []any:
		return b.weighList(v)
	case map[string]string:
		n := stepWork
		for k, s := range v {
			n += len(k) + len(s) + callWork
		}
		return b.charge(n)
	}
	return nil
}

func (b *budget) weighMap(m map[string]any) error {
	for k, e := range m {
		if err := b.charge(len(k) + callWork); err != nil {
			return err
		}
		if err := b.weighValue(e); err != nil {
			return err
		}
	}
	return b.charge(stepWork)
}

func (b *budget) weighList(l []any) error {
	for _, e := range l {
		if err := b.weighValue(e); err != nil {
			return err
		}
	}
	return b.charge(stepWork)
}

// weighValue is weigh for an element, whose strings fmt renders too.
func (b *budget) weighValue(v any) error {
	switch v := v.(type) {
	case string:
		return b.charge(len(v) + stepWork)
	case json.Number:
		return b.charge(len(v) + stepWork)
	}
	if err := b.charge(stepWork); err != nil {
		return err
	}
	return b.weigh(v)
}

// limitWriter collects output and fails once it passes its cap, which
// stops the template early, or once the rendering's budget is spent.
type limitWriter struct {
	strings.Builder
	max  int // 0: MaxValueBytes
	work *budget
}

func (w *limitWriter) Write(p []byte) (int, error) {
	max := w.max
	if max == 0 {
		max = MaxValueBytes
	}
	if w.Len()+len(p) > max {
		return 0, ErrValueTooLarge
	}
	if err := w.work.charge(len(p) + stepWork); err != nil {
		return 0, err
	}
	return w.Builder.Write(p)
}

// rangeFunc is the function meterRanges ends each range's pipeline with.
// Like printedFunc it is added at execution only, so a template cannot
// call it.
const rangeFunc = "_range"

// rangeValue is rangeFunc: it hands the value to range unchanged, and
// charges for a map's keys, which text/template sorts (through
// reflection, each costing about a call) before the first iteration: a
// range that breaks at once still pays for them.
func (b *budget) rangeValue(v any) (any, error) {
	n := 0
	switch m := v.(type) {
	case jsonObject:
		n = len(m)
	case map[string]any:
		n = len(m)
	case map[string]string:
		n = len(m)
	}
	return v, b.charge((n + 1) * callWork)
}

// meterRanges makes ranges count against the budget: each iteration
// starts by writing an empty text, which the writer charges stepWork (an
// interface call, no function call or allocation), and each range's
// pipeline ends with rangeFunc ({{ range .body.a | _range }}). Without it
// a range that prints nothing, in a template that may nest ranges over
// the same data (a body template), would be free.
func meterRanges(tree *parse.Tree, n parse.Node) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			meterRanges(tree, c)
		}
	case *parse.IfNode:
		meterRanges(tree, n.List)
		meterRanges(tree, n.ElseList)
	case *parse.WithNode:
		meterRanges(tree, n.List)
		meterRanges(tree, n.ElseList)
	case *parse.RangeNode:
		meterRanges(tree, n.List)
		meterRanges(tree, n.ElseList)
		pos := n.Pipe.Position()
		fn := parse.NewIdentifier(rangeFunc).SetTree(tree).SetPos(pos)
		n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: pos, Args: []parse.Node{fn}})
		if n.List != nil {
			tick := &parse.TextNode{NodeType: parse.NodeText, Pos: n.List.Pos, Text: []byte{}}
			n.List.Nodes = append([]parse.Node{tick}, n.List.Nodes...)
		}
	}
}
