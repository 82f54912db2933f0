package routing

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The engine gives the same answers as a Redis Function and through EVAL,
// and a Function that disappears (a new server, FUNCTION FLUSH) is loaded
// again on the next call.
func TestFunctionAndEvalAgree(t *testing.T) {
	f := newFixture(t)
	f.queue("q1")
	f.agent("a1", Available, "q1")

	viaEval := f.engine()
	viaEval.mode.Store(modeEval)

	c := f.conv("c1", "q1", "chat")
	assert.Equal(t, "a1", c.OfferedTo, "first engine offers at once")
	got, err := viaEval.GetConversation(f.ctx, "c1")
	require.NoError(t, err)
	assert.Equal(t, StateOffered, got.State)
	require.NoError(t, viaEval.Accept(f.ctx, "c1", "a1"))
	assert.Equal(t, StateAssigned, f.getConv("c1").State)

	if f.e.mode.Load() != modeFunction {
		t.Log("this Redis has no Functions: both engines ran EVAL")
		assert.Equal(t, modeEval, f.e.mode.Load())
		return
	}
	// Drop this version's library only, so other tests' engines on the
	// same server are not disturbed beyond one reload.
	require.NoError(t, f.rdb.FunctionDelete(f.ctx, engineFunc).Err())
	require.NoError(t, f.e.End(f.ctx, "c1"))
	assert.Equal(t, StateEnded, f.getConv("c1").State)
	assert.Equal(t, modeFunction, f.e.mode.Load())
}
