// Package cursorcache keeps a few live listing walkers keyed by where they
// stopped, so that fetching the next page of a large listing continues the
// walk instead of reading and sorting directories again. It is only a
// shortcut: a backend resumes a cursor that is not in the cache by seeking.
package cursorcache

import (
	"sync"
	"time"
)

// DefaultMax is how many walkers a Cache keeps when Max is 0.
const DefaultMax = 8

// Cache holds up to Max walkers; the least recently stored one goes first.
// The zero value is ready to use.
type Cache[W any] struct {
	// Max bounds the walkers kept; 0 means DefaultMax.
	Max int
	// OnEvict, when set, releases a walker pushed out of the cache.
	OnEvict func(W)

	mu      sync.Mutex
	entries map[string]entry[W]
}

type entry[W any] struct {
	w    W
	used time.Time
}

// Take removes and returns the walker stored under key.
func (c *Cache[W]) Take(key string) (W, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	delete(c.entries, key)
	return e.w, ok
}

// Put stores w under key, evicting the oldest walker when full.
func (c *Cache[W]) Put(key string, w W) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]entry[W]{}
	}
	max := c.Max
	if max <= 0 {
		max = DefaultMax
	}
	if len(c.entries) >= max {
		var oldestKey string
		var oldest time.Time
		for k, e := range c.entries {
			if oldestKey == "" || e.used.Before(oldest) {
				oldestKey, oldest = k, e.used
			}
		}
		if c.OnEvict != nil {
			c.OnEvict(c.entries[oldestKey].w)
		}
		delete(c.entries, oldestKey)
	}
	c.entries[key] = entry[W]{w: w, used: time.Now()}
}
