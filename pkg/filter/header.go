package filter

import (
	"net/http"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// headerMap is the header variable: a map(string, string) keyed by
// canonical header names whose lookups canonicalise the key first, so
// header["X-GitHub-Event"] finds "X-Github-Event". Go's HTTP server already
// canonicalises incoming names, and users copy names from provider docs in
// whatever case those use; folding on lookup serves both.
type headerMap struct {
	traits.Mapper
}

func newHeaderMap(h http.Header) traits.Mapper {
	m := make(map[string]string, len(h))
	for k, vs := range h {
		ck := http.CanonicalHeaderKey(k)
		if _, dup := m[ck]; dup || len(vs) == 0 {
			continue
		}
		m[ck] = vs[0]
	}
	return headerMap{types.NewStringStringMap(types.DefaultTypeAdapter, m)}
}

func canonical(key ref.Val) ref.Val {
	if s, ok := key.(types.String); ok {
		return types.String(http.CanonicalHeaderKey(string(s)))
	}
	return key
}

// Find implements traits.Mapper; it is what header["name"] and
// header[?"name"] call.
func (m headerMap) Find(key ref.Val) (ref.Val, bool) {
	return m.Mapper.Find(canonical(key))
}

// Get implements traits.Indexer.
func (m headerMap) Get(key ref.Val) ref.Val {
	return m.Mapper.Get(canonical(key))
}

// Contains implements traits.Container; it is what "name" in header calls.
func (m headerMap) Contains(key ref.Val) ref.Val {
	return m.Mapper.Contains(canonical(key))
}
