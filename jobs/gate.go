package jobs

import (
	"sync"

	"github.com/crmsync/crmsync"
)

// sessionGate queues the jobs of one process that want the same session, so
// they take turns among themselves before asking Redis for its lock. Two
// events of one session often arrive together; without the gate the second
// job would poll Redis, each poll a round trip, and wake up to a backoff
// step after the first finished. The Redis lock still decides between
// processes: the gate only saves a job from asking while a neighbour in its
// own process holds the session.
type sessionGate struct {
	mu      sync.Mutex
	holders map[crmsync.SessionKey]chan struct{}
}

// enter makes the caller the session's holder in this process and returns
// the function that ends that, which may be called more than once. When
// another job holds the session, enter returns instead a channel closed
// when that job leaves; the caller must wait for it and try again.
func (g *sessionGate) enter(k crmsync.SessionKey) (leave func(), busy <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ch, ok := g.holders[k]; ok {
		return nil, ch
	}
	if g.holders == nil {
		g.holders = map[crmsync.SessionKey]chan struct{}{}
	}
	ch := make(chan struct{})
	g.holders[k] = ch
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			delete(g.holders, k)
			g.mu.Unlock()
			close(ch)
		})
	}, nil
}
