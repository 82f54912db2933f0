package jobs

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/redistest"
)

func TestSessionGate(t *testing.T) {
	a := crmsync.SessionKey{Kind: crmsync.KindCall, ID: "1"}
	b := crmsync.SessionKey{Kind: crmsync.KindChat, ID: "1"}
	var g sessionGate

	leaveA, busy := g.enter(a)
	require.NotNil(t, leaveA)
	assert.Nil(t, busy, "a free session is entered at once")

	leave, busyA := g.enter(a)
	assert.Nil(t, leave, "a held session is not entered twice")
	require.NotNil(t, busyA)
	select {
	case <-busyA:
		t.Fatal("the busy channel is closed while the holder is in")
	default:
	}

	leaveB, busy := g.enter(b)
	require.NotNil(t, leaveB, "another session is independent")
	assert.Nil(t, busy)

	leaveA()
	leaveA() // a second call changes nothing
	_, open := <-busyA
	assert.False(t, open, "leaving wakes the waiters")

	leaveA2, busy := g.enter(a)
	require.NotNil(t, leaveA2, "a left session can be entered again")
	assert.Nil(t, busy)
	leaveA2()
	leaveB()
	assert.Empty(t, g.holders)
}

// countHook counts the scripts run through a client.
type countHook struct{ scripts atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if strings.HasPrefix(strings.ToLower(cmd.Name()), "eval") {
			h.scripts.Add(1)
		}
		return next(ctx, cmd)
	}
}

// A job whose session a neighbour in the same process holds waits for it
// without asking Redis, and hands the task back when the wait runs out.
func TestJobWaitsForItsNeighbourWithoutAskingRedis(t *testing.T) {
	e := newEnv(t, envOpts{noWorker: true})
	counted := redis.NewClient(redistest.Options(t))
	t.Cleanup(func() { _ = counted.Close() })
	h := &countHook{}
	counted.AddHook(h)
	e.proc.Store = NewStore(counted, e.prefix)
	e.proc.LockWait = 50 * time.Millisecond

	evs, err := crmsync.DecodeEvents([]byte(newCall(11, phone(11))))
	require.NoError(t, err)
	task, err := NewEventTask(evs[0], time.Now())
	require.NoError(t, err)

	leave, busy := e.proc.gate.enter(evs[0].Session)
	require.Nil(t, busy)
	err = e.proc.ProcessTask(context.Background(), task)
	assert.ErrorIs(t, err, ErrBusy)
	assert.Zero(t, h.scripts.Load(), "no lock was asked of Redis while the neighbour held the session")
	assert.Empty(t, e.crm.Requests(), "no CRM call was made")

	leave()
	require.NoError(t, e.proc.ProcessTask(context.Background(), task))
	assert.NotZero(t, h.scripts.Load(), "once the neighbour left, the job took the lock")
	assert.Len(t, e.crm.Records(), 1)
	assert.NotEmpty(t, e.view("call-11").CRM.RecordID)
}
