package redisbroker

import "sync"

// modelCacheSize bounds the job → model cache; past it the cache starts over.
const modelCacheSize = 1 << 16

// modelCache remembers the models of jobs this process enqueued, reserved or looked up, so
// that Events and Get skip the GET of the job's index key: a job's model never changes. An id
// can name another job later (an expired job's id taken over, possibly under another model, by
// another process); the callers treat a job missing under the cached model as a miss, forget
// the entry and look the model up again.
type modelCache struct {
	mu sync.Mutex
	m  map[string]string
}

func (c *modelCache) get(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.m[id]
	return m, ok
}

func (c *modelCache) put(id, model string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= modelCacheSize {
		c.m = make(map[string]string)
	}
	c.m[id] = model
}

func (c *modelCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}
