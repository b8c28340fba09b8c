package storage

import (
	"fmt"
	"sort"
	"strings"
)

// Resolver picks the Store that serves a URI, by scheme.
type Resolver struct {
	stores map[string]Store
	// confinement, when set, is checked on every call of every store (see
	// NewConfinedResolver).
	confinement *confinement
}

// NewResolver returns a resolver over the given stores; a later store with
// the same scheme replaces an earlier one.
func NewResolver(stores ...Store) *Resolver {
	r := &Resolver{stores: map[string]Store{}}
	for _, s := range stores {
		r.stores[s.Scheme()] = s
	}
	return r
}

// For returns the store for uri, or an ErrInvalidPath error naming the
// schemes that are configured.
func (r *Resolver) For(uri string) (Store, error) {
	u, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	s, ok := r.stores[u.Scheme]
	if !ok {
		return nil, fmt.Errorf("%w: %q: unknown scheme %q (configured: %s)", ErrInvalidPath, uri, u.Scheme, strings.Join(r.Schemes(), ", "))
	}
	return s, nil
}

// Schemes lists the configured schemes, sorted.
func (r *Resolver) Schemes() []string {
	out := make([]string, 0, len(r.stores))
	for s := range r.stores {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
