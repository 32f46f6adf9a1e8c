package argtemplate

import (
	"errors"
	"maps"
	"text/template"
	"text/template/parse"
)

// Argument templates may only loop over delivery data, so their running
// time is bounded by the body's size. validate refuses the two ways a
// template could loop without data: recursion through define/template/
// block, and ranging over a number literal ({{ range 1000000000 }}),
// which is any number literal not passed as an argument to a function
// that uses it (index .list 0, printf "%d" 3, gt (len .body) 2).
//
// Within a range, validate also refuses the methods of the data that
// render or parse a whole value (String of an object, a list or a number;
// Float64 of a number): text/template calls them itself, so they escape
// the work budget (budget.go), and once per iteration their cost
// multiplies: {{ range .body.a }}{{ if $.body.String }}{{ end }}{{ end }}.
// Outside a range each runs once.
var (
	errDefine = errors.New("define, template and block are not allowed in argument values")
	errNumber = errors.New("a number may only be an argument to a function such as index or printf")
	errMethod = errors.New("String and Float64 may not be used within a range: use toString or json (or compare a JSON number with eq, lt, gt as it is), which count towards the rendering's work limit")
)

// costlyMethods are the methods of delivery data errMethod refuses.
var costlyMethods = map[string]bool{"String": true, "Float64": true}

// passThrough are the functions that can return a literal argument as
// their result, which could then be ranged over.
var passThrough = map[string]bool{"and": true, "or": true, "default": true}

func validate(t *template.Template) error {
	if len(t.Templates()) > 1 {
		return errDefine
	}
	return walk(t.Root, false)
}

// walk checks n; inRange tells whether n runs once per iteration of a
// range.
func walk(n parse.Node, inRange bool) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := walk(c, inRange); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		return walk(n.Pipe, inRange)
	case *parse.IfNode:
		return walkBranch(&n.BranchNode, inRange, inRange)
	case *parse.RangeNode:
		return walkBranch(&n.BranchNode, inRange, true)
	case *parse.WithNode:
		return walkBranch(&n.BranchNode, inRange, inRange)
	case *parse.TemplateNode:
		return errDefine
	case *parse.PipeNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Cmds {
			if err := walkCommand(c, inRange); err != nil {
				return err
			}
		}
	case *parse.ChainNode:
		if err := walkFields(n.Field, inRange); err != nil {
			return err
		}
		return walk(n.Node, inRange)
	case *parse.FieldNode:
		return walkFields(n.Ident, inRange)
	case *parse.VariableNode:
		return walkFields(n.Ident[1:], inRange)
	case *parse.NumberNode:
		return errNumber
	}
	return nil
}

// walkBranch checks a control structure; inList tells whether its list
// runs once per iteration (a range's does).
func walkBranch(b *parse.BranchNode, inRange, inList bool) error {
	if err := walk(b.Pipe, inRange); err != nil {
		return err
	}
	if err := walk(b.List, inList); err != nil {
		return err
	}
	return walk(b.ElseList, inRange)
}

// walkCommand allows number literals only as arguments of a function that
// does not hand them back.
func walkCommand(c *parse.CommandNode, inRange bool) error {
	fn, isCall := c.Args[0].(*parse.IdentifierNode)
	numbersOK := isCall && !passThrough[fn.Ident]
	for _, a := range c.Args {
		if _, ok := a.(*parse.NumberNode); ok && numbersOK {
			continue
		}
		if err := walk(a, inRange); err != nil {
			return err
		}
	}
	return nil
}

// walkFields refuses costlyMethods within a range. A field of that name
// of a header or query map is a key, refused too: index reads it.
func walkFields(names []string, inRange bool) error {
	if !inRange {
		return nil
	}
	for _, name := range names {
		if costlyMethods[name] {
			return errMethod
		}
	}
	return nil
}

// errNestedRange refuses a loop that multiplies another:
// {{ range .body.a }}{{ range $.body.a }}{{ end }}{{ end }} runs len(a)²
// times.
var errNestedRange = errors.New("a range inside a range may only loop over part of the outer range's element (. or its fields), not over $, header, a number, an index or a variable set outside it")

// validateValue checks an argument value template: validate, and
// checkRanges, which BodyTemplate does not apply (yet).
func validateValue(t *template.Template) error {
	if err := validate(t); err != nil {
		return err
	}
	return checkRanges(t.Root)
}

// checkRanges lets a range inside another range loop only over part of the
// outer range's element: the dot, a variable holding (part of) the element,
// their fields, and what functions other than header make of them. Each
// element is then walked once more per level of ranges, so the running
// time stays bounded by the body's size.
//
// A number is no part of an element: {{ range len .body.a }} loops as long
// as the list, so within it the dot, a number, is no part of an element
// either; nor is a range's index ($i in {{ range $i, $e := .body.a }}).
// Delivery data holds no numbers (a JSON number is json.Number, text), so
// numbers come from len, literals and indexes only. A variable set with =
// anywhere, or declared within parentheses, is taken to hold anything.
func checkRanges(root *parse.ListNode) error {
	s := &rangeScope{vars: map[string]valueInfo{}, unknown: map[string]bool{}}
	unknownVars(root, false, s.unknown)
	return s.list(root)
}

// valueInfo is what checkRanges knows of a value.
type valueInfo struct {
	elem int  // the depth of the range whose element it is part of; 0: none
	num  bool // it may be a number
}

// rangeScope is the state at a point of the template: how many ranges
// enclose it, what the dot and the variables declared so far hold.
type rangeScope struct {
	depth   int
	dot     valueInfo
	vars    map[string]valueInfo
	unknown map[string]bool // shared: variables taken to hold anything
}

// child is the scope of a control structure's list: variables declared in
// it end with it.
func (s *rangeScope) child() *rangeScope {
	c := *s
	c.vars = maps.Clone(s.vars)
	return &c
}

func (s *rangeScope) list(l *parse.ListNode) error {
	if l == nil {
		return nil
	}
	for _, n := range l.Nodes {
		var err error
		switch n := n.(type) {
		case *parse.ActionNode:
			s.declare(n.Pipe, s.info(n.Pipe))
		case *parse.IfNode:
			c := s.child()
			c.declare(n.Pipe, c.info(n.Pipe))
			if err = c.child().list(n.List); err == nil {
				err = c.child().list(n.ElseList)
			}
		case *parse.WithNode:
			c := s.child()
			v := c.info(n.Pipe)
			c.declare(n.Pipe, v)
			in := c.child()
			in.dot = v
			if err = in.list(n.List); err == nil {
				err = c.child().list(n.ElseList)
			}
		case *parse.RangeNode:
			err = s.rangeNode(n)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *rangeScope) rangeNode(n *parse.RangeNode) error {
	if s.depth > 0 && !s.local(n.Pipe) {
		return errNestedRange
	}
	v := s.info(n.Pipe)
	in := s.child()
	in.depth++
	elem := valueInfo{num: v.num} // a number counts up: no element
	if !v.num {
		elem.elem = in.depth
	}
	in.dot = elem
	if d := n.Pipe.Decl; !n.Pipe.IsAssign && len(d) > 0 {
		in.vars[d[len(d)-1].Ident[0]] = elem
		if len(d) == 2 {
			in.vars[d[0].Ident[0]] = valueInfo{num: true} // the index or key
		}
	}
	if err := in.list(n.List); err != nil {
		return err
	}
	// In else, the variables hold the pipeline's (empty) value.
	c := s.child()
	c.declare(n.Pipe, v)
	return c.list(n.ElseList)
}

// declare records the variables a pipeline declares with :=.
func (s *rangeScope) declare(p *parse.PipeNode, v valueInfo) {
	if p == nil || p.IsAssign {
		return
	}
	for _, d := range p.Decl {
		s.vars[d.Ident[0]] = v
	}
}

func (s *rangeScope) info(p *parse.PipeNode) valueInfo {
	v := valueInfo{num: s.num(p)}
	if s.depth > 0 && s.local(p) {
		v.elem = s.depth
	}
	return v
}

// local reports whether n is made only of the innermost range's element.
func (s *rangeScope) local(n parse.Node) bool {
	switch n := n.(type) {
	case *parse.DotNode, *parse.FieldNode:
		return s.depth > 0 && s.dot.elem == s.depth
	case *parse.VariableNode:
		v, ok := s.vars[n.Ident[0]]
		return ok && !s.unknown[n.Ident[0]] && s.depth > 0 && v.elem == s.depth
	case *parse.ChainNode:
		return s.local(n.Node)
	case *parse.PipeNode:
		if n == nil {
			return true
		}
		for _, c := range n.Cmds {
			for _, a := range c.Args {
				if !s.local(a) {
					return false
				}
			}
		}
	case *parse.IdentifierNode:
		return n.Ident != "header" // delivery data beside the element
	}
	return true
}

// num reports whether a pipeline's value may be a number: len's result,
// or one passed through and, or or default.
func (s *rangeScope) num(p *parse.PipeNode) bool {
	return p != nil && len(p.Cmds) > 0 && s.numCmd(p.Cmds, len(p.Cmds)-1)
}

func (s *rangeScope) numCmd(cmds []*parse.CommandNode, i int) bool {
	args := cmds[i].Args
	fn, ok := args[0].(*parse.IdentifierNode)
	switch {
	case !ok:
		return s.numArg(args[0])
	case fn.Ident == "len":
		return true
	case passThrough[fn.Ident]:
		for _, a := range args[1:] {
			if s.numArg(a) {
				return true
			}
		}
		return i > 0 && s.numCmd(cmds, i-1) // the piped value
	}
	return false
}

func (s *rangeScope) numArg(n parse.Node) bool {
	switch n := n.(type) {
	case *parse.NumberNode:
		return true
	case *parse.DotNode:
		return s.dot.num
	case *parse.VariableNode:
		name := n.Ident[0]
		if len(n.Ident) > 1 || name == "$" {
			return false // a field, or the root
		}
		v, ok := s.vars[name]
		return !ok || s.unknown[name] || v.num
	case *parse.PipeNode:
		return s.num(n)
	}
	return false
}

// unknownVars collects the variables set with =, and those declared within
// parentheses, whose scope checkRanges does not follow.
func unknownVars(n parse.Node, nested bool, out map[string]bool) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			unknownVars(c, false, out)
		}
	case *parse.ActionNode:
		unknownVars(n.Pipe, false, out)
	case *parse.IfNode:
		unknownBranch(&n.BranchNode, out)
	case *parse.RangeNode:
		unknownBranch(&n.BranchNode, out)
	case *parse.WithNode:
		unknownBranch(&n.BranchNode, out)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		if nested || n.IsAssign {
			for _, d := range n.Decl {
				out[d.Ident[0]] = true
			}
		}
		for _, c := range n.Cmds {
			for _, a := range c.Args {
				unknownVars(a, true, out)
			}
		}
	case *parse.ChainNode:
		unknownVars(n.Node, true, out)
	}
}

func unknownBranch(b *parse.BranchNode, out map[string]bool) {
	unknownVars(b.Pipe, false, out)
	unknownVars(b.List, false, out)
	unknownVars(b.ElseList, false, out)
}
