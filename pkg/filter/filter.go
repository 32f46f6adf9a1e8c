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
)

// CostLimit is the most a single evaluation may cost, in CEL cost units
// (roughly one per operation). Ordinary filters cost tens; the limit only
// stops pathological ones, such as nested comprehensions over a large body.
const CostLimit = 1_000_000

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
type Program struct {
	expr string
	prg  cel.Program
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
	prg, err := e.Program(ast,
		cel.CostLimit(CostLimit),
		cel.InterruptCheckFrequency(interruptCheckFrequency),
	)
	if err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	return &Program{expr: expr, prg: prg}, nil
}

// String returns the expression the program was compiled from.
func (p *Program) String() string { return p.expr }

// Match reports whether the delivery passes the filter. On an evaluation
// error (a missing field, a type mismatch, the cost limit, a cancelled
// ctx) it returns false and the error; the caller records the delivery as
// filtered with that error.
func (p *Program) Match(ctx context.Context, in Input) (bool, error) {
	vars := map[string]any{
		"body":   decodeBody(in.Body, in.ContentType),
		"header": newHeaderMap(in.Header),
		"query":  firstValues(in.Query),
		"method": in.Method,
	}
	out, _, err := p.prg.ContextEval(ctx, vars)
	if err != nil {
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
