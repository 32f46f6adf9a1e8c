package argtemplate

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
	"unicode/utf8"
)

// MaxValueBytes is the largest rendered argument value. Values become
// environment variables, which operating systems limit.
const MaxValueBytes = 64 << 10

// ErrValueTooLarge is returned when an argument renders to more than
// MaxValueBytes.
var ErrValueTooLarge = fmt.Errorf("value exceeds %d bytes", MaxValueBytes)

// Arg is one job argument as configured.
type Arg struct {
	// Name is the argument's name, unique within the job.
	Name string
	// Default is used when Value is empty or cannot be resolved; nil
	// means the argument has no default.
	Default *string
	// Value is a text/template rendered against the delivery; "" means
	// use Default.
	Value string
}

// label names the argument in errors the way an operator finds it in YAML.
func label(i int, a Arg) string { return fmt.Sprintf("args[%d] (%s)", i, a.Name) }

// CheckDefaults reports the first argument that has neither a default nor
// a value template, so it could never be resolved from a GET delivery.
func CheckDefaults(args []Arg) error {
	for i, a := range args {
		if a.Default == nil && a.Value == "" {
			return fmt.Errorf("%s: needs a default or a value", label(i, a))
		}
	}
	return nil
}

// CheckGETDefaults reports the first argument without a default: a GET
// delivery runs its job with argument defaults only (no body to resolve
// templates against).
func CheckGETDefaults(args []Arg) error {
	for i, a := range args {
		if a.Default == nil {
			return fmt.Errorf("%s: needs a default, as a GET delivery passes defaults only", label(i, a))
		}
	}
	return nil
}

// Set is a job's compiled argument templates. It is safe for concurrent
// use.
type Set struct {
	args []compiled
}

type compiled struct {
	arg  Arg
	tmpl *template.Template // nil when Value is empty
	// renderers holds *renderer clones of tmpl for reuse.
	renderers *sync.Pool
}

// Compile parses every argument's value template. The control plane calls
// it when a job is applied, so a bad template is refused there; an error
// names the argument: `args[1] (ref): template: ref:1: ...`.
func Compile(args []Arg) (*Set, error) {
	s := &Set{args: make([]compiled, 0, len(args))}
	seen := make(map[string]bool, len(args))
	for i, a := range args {
		if a.Name == "" {
			return nil, fmt.Errorf("%s: name is empty", label(i, a))
		}
		if seen[a.Name] {
			return nil, fmt.Errorf("%s: duplicate name", label(i, a))
		}
		seen[a.Name] = true
		c := compiled{arg: a}
		if a.Value != "" {
			t, err := template.New(a.Name).Option("missingkey=error").Funcs(funcs(nil, nil)).Parse(a.Value)
			if err == nil {
				err = validateValue(t)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", label(i, a), err)
			}
			markPrinted(t.Tree, t.Root)
			meterRanges(t.Tree, t.Root)
			c.tmpl, c.renderers = t, &sync.Pool{}
		}
		s.args = append(s.args, c)
	}
	return s, nil
}

// BodyTemplate parses an HTTP job's body template (spec.http.body) with the
// functions and limits of argument values: define, template and block
// refused, loops over delivery data only. Unlike an argument value, it may
// nest a range over data outside the outer range's element: only its
// output is bounded (MaxBodyBytes). text/template escapes nothing, so
// a value from the delivery goes into a JSON body through json, which
// quotes and escapes it: {"text": {{ json .body.msg }}}.
func BodyTemplate(text string) (*template.Template, error) {
	t, err := template.New("body").Option("missingkey=zero").Funcs(funcs(nil, nil)).Parse(text)
	if err == nil {
		err = validate(t)
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

// MaxBodyBytes bounds an HTTP job's rendered body: a template ranging over
// a sender's data must not turn a small delivery into a huge request (or
// the executor's memory).
const MaxBodyBytes = 1 << 20

// RenderBody renders an HTTP job's body template (checked at apply with
// BodyTemplate) against the delivery's data, as argument templates see it
// (.body, .header, .query, .method, .webhook, .eventId, and the header
// function), plus extra fields (the run's .args, .payload, .run, .event).
// The output is bounded by MaxBodyBytes, and the work by a budget sized
// from the delivery and the extra fields (ErrTooMuchWork). A part with no
// value prints nothing (printedInBody): a body has no default to take.
func RenderBody(text string, d Data, extra map[string]any) ([]byte, error) {
	limit := workFor(d.size + extraSize(extra))
	work := &budget{left: limit}
	t, err := template.New("body").Option("missingkey=zero").Funcs(funcs(&d.Header, work)).Parse(text)
	if err == nil {
		err = validate(t)
	}
	if err != nil {
		return nil, err
	}
	meterRanges(t.Tree, t.Root)
	endPrinting(t.Tree, t.Root, bodyPrintedFunc, false)
	t.Funcs(template.FuncMap{rangeFunc: work.rangeValue, bodyPrintedFunc: printedInBody})
	root := d.root()
	for k, v := range extra {
		root[k] = v
	}
	w := limitWriter{max: MaxBodyBytes, work: work}
	if err := t.Execute(&w, root); err != nil {
		if errors.Is(err, ErrValueTooLarge) {
			return nil, fmt.Errorf("the body is over %d bytes", MaxBodyBytes)
		}
		if errors.Is(err, ErrTooMuchWork) {
			return nil, fmt.Errorf("%w (%d bytes of work)", ErrTooMuchWork, limit)
		}
		if note := bodyNote(err, text, d); note != "" {
			return nil, fmt.Errorf("%s (%s)", execReason(err), note)
		}
		return nil, errors.New(execReason(err))
	}
	return []byte(w.String()), nil
}

// bodyNote is what to add to the error of a template that reads .body
// when the body is not a JSON object (Data.notAnObject), or "": the error
// would blame a key of an object there is not.
func bodyNote(err error, text string, d Data) string {
	if errors.Is(err, ErrTooMuchWork) || errors.Is(err, ErrValueTooLarge) || !strings.Contains(text, ".body") {
		return ""
	}
	return d.notAnObject()
}

// extraSize is the size of RenderBody's extra fields that are text (the
// payload, the args), which a template can walk as it can the body.
func extraSize(extra map[string]any) int {
	n := 0
	for k, v := range extra {
		n += len(k)
		switch v := v.(type) {
		case string:
			n += len(v)
		case map[string]string:
			for k, s := range v {
				n += len(k) + len(s)
			}
		}
	}
	return n
}

// Templated reports whether any argument has a value template: when none
// has, Resolve needs no delivery data (the defaults are the values), and a
// caller can skip building it.
func (s *Set) Templated() bool {
	for _, c := range s.args {
		if c.tmpl != nil {
			return true
		}
	}
	return false
}

// Resolve renders every argument against d and returns name → value. It
// stops at the first argument that cannot be resolved; see the package
// documentation for when a default is used.
func (s *Set) Resolve(d Data) (map[string]string, error) {
	root := d.root()
	out := make(map[string]string, len(s.args))
	for _, c := range s.args {
		v, err := c.resolve(root, d.Header, workFor(d.size))
		if err != nil {
			if note := bodyNote(err, c.arg.Value, d); note != "" {
				return nil, fmt.Errorf("arg %q: %w (%s)", c.arg.Name, err, note)
			}
			return nil, fmt.Errorf("arg %q: %w", c.arg.Name, err)
		}
		out[c.arg.Name] = v
	}
	return out, nil
}

// resolve renders the argument, with at most work bytes of work over both
// renderings: over the budget, like over MaxValueBytes, it fails whether
// or not there is a default (a default would hide a template that cannot
// work on deliveries of this size).
func (c compiled) resolve(root map[string]any, header map[string]string, work int) (string, error) {
	if c.tmpl == nil {
		if c.arg.Default == nil {
			return "", errors.New("no value template and no default")
		}
		return *c.arg.Default, nil
	}
	b := &budget{left: work}
	v, missing, strictErr := c.execute(root, header, "missingkey=error", b)
	if strictErr == nil && !missing {
		return c.valid(v)
	}
	if err := c.overLimit(strictErr, work); err != nil {
		return "", err
	}
	if strictErr != nil {
		// A missing key the template handles (default, if, with) is fine.
		v, missing, err := c.execute(root, header, "missingkey=zero", b)
		if err := c.overLimit(err, work); err != nil {
			return "", err
		}
		if err == nil && !missing {
			return c.valid(v)
		}
	}
	if c.arg.Default != nil {
		return *c.arg.Default, nil
	}
	reason := "no value"
	if strictErr != nil {
		reason = execReason(strictErr)
	}
	return "", fmt.Errorf("cannot resolve %s: %s", shorten(c.arg.Value), reason)
}

// valid returns v, a rendered value, unless it is not UTF-8 (a form
// body in Latin-1, say): the run's records and request carry values as
// JSON text, which would replace its bytes without a word. Then the
// default applies, or resolution fails saying why.
func (c compiled) valid(v string) (string, error) {
	if utf8.ValidString(v) {
		return v, nil
	}
	if c.arg.Default != nil {
		return *c.arg.Default, nil
	}
	return "", fmt.Errorf("cannot resolve %s: the value is not valid UTF-8 (a body in another charset?)", shorten(c.arg.Value))
}

// overLimit is the error of a rendering stopped by a limit, or nil.
func (c compiled) overLimit(err error, work int) error {
	switch {
	case errors.Is(err, ErrValueTooLarge):
		return err
	case errors.Is(err, ErrTooMuchWork):
		// Not text/template's message, which names internal functions
		// (_range) and says "error calling".
		return fmt.Errorf("cannot resolve %s: %w (%d bytes of work)", shorten(c.arg.Value), ErrTooMuchWork, work)
	}
	return nil
}

// execute renders the template with the option missingkey
// ("missingkey=error" or "missingkey=zero"), spending b, and reports
// whether it printed a part with no value.
func (c compiled) execute(root map[string]any, header map[string]string, missingkey string, b *budget) (v string, missing bool, err error) {
	r, _ := c.renderers.Get().(*renderer)
	if r == nil {
		if r, err = newRenderer(c.tmpl); err != nil {
			return "", false, err
		}
	}
	r.header, r.work, r.missing = header, *b, false
	r.tmpl.Option(missingkey)
	w := limitWriter{work: &r.work}
	err = r.tmpl.Execute(&w, root)
	*b, missing = r.work, r.missing
	r.header = nil // holds no delivery while pooled
	c.renderers.Put(r)
	if err != nil {
		return "", false, err
	}
	return w.String(), missing, nil
}

// renderer is a clone of an argument's template whose functions are bound
// to its fields: the delivery's headers, the budget, and whether the
// rendering printed a part with no value. Renderings reuse renderers, one
// at a time each: cloning a template and binding its functions costs more
// than rendering a short one.
type renderer struct {
	tmpl    *template.Template
	header  map[string]string
	work    budget
	missing bool
}

func newRenderer(t *template.Template) (*renderer, error) {
	r := &renderer{}
	t, err := t.Clone()
	if err != nil {
		return nil, err
	}
	fm := funcs(&r.header, &r.work)
	addNoValueVariants(fm, &r.work)
	fm[printedFunc] = func(val reflect.Value) reflect.Value {
		// text/template prints an invalid value (a missing key, a nil)
		// as "<no value>".
		if !val.IsValid() {
			r.missing = true
		}
		return val
	}
	fm[rangeFunc] = r.work.rangeValue
	r.tmpl = t.Funcs(fm)
	return r, nil
}

// printedFunc is the function markPrinted ends printing actions with. It
// is not among the functions a template is parsed with, so a value
// template cannot call it.
const printedFunc = "_printed"

// markPrinted ends the pipeline of every action that prints its value
// ({{ .body.topic }}, not {{ $x := .body.topic }}) with printedFunc, as if
// it read {{ .body.topic | _printed }}: the function hands the value on
// unchanged and tells execute when it has none. This finds a part with no
// value from the value itself, not by searching the output for the
// "<no value>" text/template prints for it, which a delivery may hold.
func markPrinted(tree *parse.Tree, n parse.Node) { endPrinting(tree, n, printedFunc, true) }

// endPrinting ends the pipeline of every action that prints its value
// with function fn; noValue: markNoValue it first.
func endPrinting(tree *parse.Tree, n parse.Node, fn string, noValue bool) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			endPrinting(tree, c, fn, noValue)
		}
	case *parse.ActionNode:
		if len(n.Pipe.Decl) > 0 {
			return // assigns, prints nothing
		}
		if noValue {
			markNoValue(n.Pipe)
		}
		id := parse.NewIdentifier(fn).SetTree(tree).SetPos(n.Pipe.Position())
		n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: n.Pipe.Position(), Args: []parse.Node{id}})
	case *parse.IfNode:
		endPrinting(tree, n.List, fn, noValue)
		endPrinting(tree, n.ElseList, fn, noValue)
	case *parse.RangeNode:
		endPrinting(tree, n.List, fn, noValue)
		endPrinting(tree, n.ElseList, fn, noValue)
	case *parse.WithNode:
		endPrinting(tree, n.List, fn, noValue)
		endPrinting(tree, n.ElseList, fn, noValue)
	}
}

// bodyPrintedFunc is the function an HTTP body template's printing actions
// end with (endPrinting): a part with no value (a missing key, query
// parameter or header, a JSON null) prints as "", not as the "<no value>"
// text/template prints for it. Like printedFunc, a template cannot call it.
const bodyPrintedFunc = "_printedBody"

// printedInBody is bodyPrintedFunc.
func printedInBody(val reflect.Value) reflect.Value {
	if !val.IsValid() {
		return reflect.ValueOf("")
	}
	return val
}

// markNoValue makes the text functions whose result pipe prints hand a
// missing key or null on as no value (see noValueFuncs): the last command,
// and each one before it whose result goes straight into such a function
// ({{ .body.x | trim | lower }}, {{ printf "%s" .body.x | upper }}), and
// the same within a parenthesised pipeline printed whole
// ({{ (lower .body.x) }}). Anywhere else ({{ if eq (lower .body.x) "" }},
// {{ .body.x | lower | default "d" }}, a variable) they give "" as always.
func markNoValue(pipe *parse.PipeNode) {
	for i := len(pipe.Cmds) - 1; i >= 0; i-- {
		switch a := pipe.Cmds[i].Args[0].(type) {
		case *parse.IdentifierNode:
			if !noValueFuncs[a.Ident] {
				return
			}
			a.Ident = noValuePrefix + a.Ident
		case *parse.PipeNode:
			if len(pipe.Cmds[i].Args) == 1 && len(a.Decl) == 0 && i == len(pipe.Cmds)-1 {
				markNoValue(a) // {{ (lower .body.x) }}: printed as it is
			}
			return
		default:
			return
		}
	}
}

// execReason strips text/template's location prefix from an execution
// error, leaving the cause: `map has no entry for key "ref"`.
func execReason(err error) string {
	// Not the name of printf's variant (markNoValue): error calling printf.
	msg := strings.ReplaceAll(err.Error(), "error calling "+noValuePrefix, "error calling ")
	if _, rest, ok := strings.Cut(msg, ": executing "); ok {
		if _, cause, ok := strings.Cut(rest, ">: "); ok {
			return cause
		}
	}
	return msg
}

// shorten keeps error messages readable for long templates.
func shorten(s string) string {
	const n = 120
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
