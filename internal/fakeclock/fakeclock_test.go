package fakeclock

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestClock(t *testing.T) {
	start := time.UnixMilli(1_733_130_000_000)
	c := New(start)
	assert.Equal(t, start, c.Now())
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() { defer wg.Done(); c.Advance(time.Second); _ = c.Now() }()
	}
	wg.Wait()
	assert.Equal(t, start.Add(10*time.Second), c.Now())
}
