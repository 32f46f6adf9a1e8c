package filter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
)

// CostLimit is the cost limit of an evaluation over a small body, in CEL
// cost units (roughly one per operation), and the least limit of any.
// Ordinary filters cost tens; the limit only stops pathological ones, such
// as nested comprehensions over a large body. A larger body raises it: see
// CostPerBodyByte.
const CostLimit = 1_000_000

// CostPerBodyByte is how much an evaluation may cost per byte of the body,
// when that is more than CostLimit. One pass over a body costs a few units
// a byte at most (2 to 4 for a comparison or two per element of a JSON
// list of small numbers, the densest body), so a filter that goes over the
// body once, or twice, fits whatever the body's size, up to the 4 MiB a
// webhook may take (resource.MaxBodyBytes; a limit of 34 million, a few
// seconds of CPU), while one that goes over the body once per element (a
// nested comprehension) is still stopped: its cost grows with the square
// of the body.
const CostPerBodyByte = 8

// cachedLimits is how many cost limits (multiples of CostLimit) a Program
// keeps an evaluable program for: those of bodies up to 4 MiB. A larger
// body gets one built for its evaluation.
const cachedLimits = (CostPerBodyByte*(4<<20) + CostLimit - 1) / CostLimit

// interruptCheckFrequency is how many comprehension iterations run between
// checks of the context, so a cancelled dispatcher stops a long evaluation.
const interruptCheckFrequency = 100

// ErrNotBool is wrapped by the error Compile and Match return for a filter
// whose result is not a bool.
var ErrNotBool = errors.New("filter must evaluate to a bool")

// Input is the part of a delivery a filter can see.
type Input struct {
	// Body is the raw request body.
	Body []byte
	// ContentType is the request's Content-Type header, used to decode Body.
	ContentType string
	// Header holds the request headers; names may be in any case.
	Header http.Header
	// Query holds the query parameters.
	Query url.Values
	// Method is the HTTP method.
	Method string
}

// Program is a compiled filter. It is safe for concurrent use: compile
// once when the webhook's configuration changes, evaluate per delivery.
//
// cel-go fixes the cost limit when it builds the evaluable program from
// the checked expression (cheap, unlike Compile), so a Program keeps one
// per limit: the one of CostLimit built by Compile, the larger ones on the
// first body that needs them.
type Program struct {
	expr string
	ast  *cel.Ast
	// limits[i] evaluates with a limit of (i+1)*CostLimit; limits[0] is
	// built by Compile.
	limits [cachedLimits]limitProgram
}

// limitProgram is the program of one cost limit, built once.
type limitProgram struct {
	once sync.Once
	prg  cel.Program
	err  error
}

// Compile parses and type-checks a filter expression. Its error carries
// CEL's description of the problem, with line and column.
func Compile(expr string) (*Program, error) {
	e, err := env()
	if err != nil {
		return nil, fmt.Errorf("filter: environment: %w", err)
	}
	ast, iss := e.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("filter: %w", iss.Err())
	}
	// dyn is allowed (body.draft is dyn) and checked again by Match.
	if out := ast.OutputType(); !out.IsExactType(types.BoolType) && !out.IsExactType(types.DynType) {
		return nil, fmt.Errorf("%w, not %s", ErrNotBool, out)
	}
	p := &Program{expr: expr, ast: ast}
	if _, err := p.program(CostLimit); err != nil {
		return nil, err
	}
	return p, nil
}

// costLimit is the cost limit of an evaluation over a body of n bytes:
// CostPerBodyByte a byte, rounded up to a multiple of CostLimit (so a
// Program needs few programs), at least CostLimit.
func costLimit(n int) uint64 {
	perBody := CostPerBodyByte * uint64(n)
	return max(1, (perBody+CostLimit-1)/CostLimit) * CostLimit
}

// program returns the evaluable program of limit, a multiple of CostLimit.
func (p *Program) program(limit uint64) (cel.Program, error) {
	if i := limit/CostLimit - 1; i < cachedLimits {
		l := &p.limits[i]
		l.once.Do(func() { l.prg, l.err = newProgram(p.ast, limit) })
		return l.prg, l.err
	}
	return newProgram(p.ast, limit)
}

func newProgram(ast *cel.Ast, limit uint64) (cel.Program, error) {
	e, err := env()
	if err != nil {
		return nil, fmt.Errorf("filter: environment: %w", err)
	}
	prg, err := e.Program(ast,
		cel.CostLimit(limit),
		cel.InterruptCheckFrequency(interruptCheckFrequency),
		cel.CustomDecoratorV2(boundStrings(maxStringBytes(limit))),
		cel.CostTrackerOptions(chargedBySize...),
	)
	if err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	return prg, nil
}

// readsBody reports whether the expression refers to the body variable.
func (p *Program) readsBody() bool {
	for _, r := range p.ast.NativeRep().ReferenceMap() {
		if r.Name == "body" {
			return true
		}
	}
	return false
}

// String returns the expression the program was compiled from.
func (p *Program) String() string { return p.expr }

// Match reports whether the delivery passes the filter. On an evaluation
// error (a missing field, a type mismatch, the cost limit, a cancelled
// ctx) it returns false and the error; the caller records the delivery as
// filtered with that error. The cost limit is the body's (costLimit).
func (p *Program) Match(ctx context.Context, in Input) (bool, error) {
	limit := costLimit(len(in.Body))
	prg, err := p.program(limit)
	if err != nil {
		return false, err
	}
	body := decodeBody(in.Body, in.ContentType)
	vars := map[string]any{
		"body":   body,
		"header": newHeaderMap(in.Header),
		"query":  firstValues(in.Query),
		"method": in.Method,
	}
	out, _, err := prg.ContextEval(ctx, vars)
	if ce := (interpreter.EvalCancelledError{}); errors.As(err, &ce) && ce.Cause == interpreter.CostLimitExceeded {
		return false, fmt.Errorf("filter: %w (limit %d for a body of %d bytes)", err, limit, len(in.Body))
	}
	if err != nil {
		// "no such key: ref" on a text body blames the key, not the body.
		if kind := notAnObject(in, body); kind != "" && p.readsBody() {
			return false, fmt.Errorf("filter: %w (%s)", err, kind)
		}
		return false, fmt.Errorf("filter: %w", err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("%w, got %s", ErrNotBool, out.Type().TypeName())
	}
	return b, nil
}

// env is built once: building it declares the standard library, which is
// the slow part of Compile.
var env = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("body", cel.DynType),
		cel.Variable("header", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("query", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("method", cel.StringType),
		cel.OptionalTypes(),
		cel.CrossTypeNumericComparisons(true),
		ext.Strings(),
	)
})

func firstValues(q url.Values) map[string]string {
	m := make(map[string]string, len(q))
	for k, vs := range q {
		if len(vs) > 0 {
			m[k] = vs[0]
		}
	}
	return m
}
