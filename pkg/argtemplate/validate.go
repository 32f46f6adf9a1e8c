package argtemplate

import (
	"errors"
	"text/template"
	"text/template/parse"
)

// Argument templates may only loop over delivery data, so their running
// time is bounded by the body's size. validate refuses the two ways a
// template could loop without data: recursion through define/template/
// block, and ranging over a number literal ({{ range 1000000000 }}),
// which is any number literal not passed as an argument to a function
// that uses it (index .list 0, printf "%d" 3, gt (len .body) 2).
var (
	errDefine = errors.New("define, template and block are not allowed in argument values")
	errNumber = errors.New("a number may only be an argument to a function such as index or printf")
)

// passThrough are the functions that can return a literal argument as
// their result, which could then be ranged over.
var passThrough = map[string]bool{"and": true, "or": true, "default": true}

func validate(t *template.Template) error {
	if len(t.Templates()) > 1 {
		return errDefine
	}
	return walk(t.Root)
}

func walk(n parse.Node) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := walk(c); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		return walk(n.Pipe)
	case *parse.IfNode:
		return walkBranch(&n.BranchNode)
	case *parse.RangeNode:
		return walkBranch(&n.BranchNode)
	case *parse.WithNode:
		return walkBranch(&n.BranchNode)
	case *parse.TemplateNode:
		return errDefine
	case *parse.PipeNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Cmds {
			if err := walkCommand(c); err != nil {
				return err
			}
		}
	case *parse.ChainNode:
		return walk(n.Node)
	case *parse.NumberNode:
		return errNumber
	}
	return nil
}

func walkBranch(b *parse.BranchNode) error {
	for _, n := range []parse.Node{b.Pipe, b.List, b.ElseList} {
		if err := walk(n); err != nil {
			return err
		}
	}
	return nil
}

// walkCommand allows number literals only as arguments of a function that
// does not hand them back.
func walkCommand(c *parse.CommandNode) error {
	fn, isCall := c.Args[0].(*parse.IdentifierNode)
	numbersOK := isCall && !passThrough[fn.Ident]
	for _, a := range c.Args {
		if _, ok := a.(*parse.NumberNode); ok && numbersOK {
			continue
		}
		if err := walk(a); err != nil {
			return err
		}
	}
	return nil
}
