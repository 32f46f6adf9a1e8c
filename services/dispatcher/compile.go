package dispatcher

import (
	"sync"

	"github.com/hookrun/hookrun/pkg/argtemplate"
	"github.com/hookrun/hookrun/pkg/catalog"
	"github.com/hookrun/hookrun/pkg/filter"
	"github.com/hookrun/hookrun/pkg/resource"
)

// compiled caches filter programs and argument templates, compiled once per
// configuration change rather than per delivery. The cache is dropped
// whenever the catalog changes.
type compiled struct {
	mu      sync.Mutex
	filters map[*resource.Webhook]filterEntry
	args    map[*resource.Job]argsEntry
}

type filterEntry struct {
	p   *filter.Program
	err error
}

type argsEntry struct {
	s   *argtemplate.Set
	err error
}

func newCompiled(cat *catalog.Catalog) *compiled {
	c := &compiled{}
	c.reset()
	cat.OnChange(c.reset)
	return c
}

func (c *compiled) reset() {
	c.mu.Lock()
	c.filters = map[*resource.Webhook]filterEntry{}
	c.args = map[*resource.Job]argsEntry{}
	c.mu.Unlock()
}

// filter returns the webhook's compiled filter, nil when it has none.
func (c *compiled) filter(w *resource.Webhook) (*filter.Program, error) {
	if w.Spec.Filter == "" {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.filters[w]
	if !ok {
		e.p, e.err = filter.Compile(w.Spec.Filter)
		c.filters[w] = e
	}
	return e.p, e.err
}

// templates returns the job's compiled argument templates.
func (c *compiled) templates(j *resource.Job) (*argtemplate.Set, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.args[j]
	if !ok {
		e.s, e.err = argtemplate.Compile(j.Spec.TemplateArgs())
		c.args[j] = e
	}
	return e.s, e.err
}
