package scriptstore

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/crmsync/crmsync"
)

func TestHashTag(t *testing.T) {
	for key, want := range map[string]string{"crmsync:{routing}:": "routing", "a{b}c{d}": "b", "{}x": "", "x{y": "", "plain": ""} {
		got, ok := HashTag(key)
		assert.Equal(t, want, got, key)
		assert.Equal(t, want != "", ok, key)
	}
}

func TestReplies(t *testing.T) {
	assert.Equal(t, "", Str(nil))
	assert.Equal(t, "42", Str(int64(42)))
	assert.Equal(t, "x", Str("x"))
	assert.Equal(t, int64(42), Num("42"))
	assert.Equal(t, int64(7), Num(int64(7)))
	assert.Equal(t, int64(0), Num(nil))
	assert.Equal(t, int64(0), Num("x"))
}

func TestUnavailable(t *testing.T) {
	down := Unavailable("routing", "create", errors.New("dial tcp 127.0.0.1:6379: connection refused"))
	assert.Equal(t, crmsync.EUNAVAILABLE, crmsync.ErrorCode(down))
	busy := Unavailable("routing", "create", replyErr("LOADING Redis is loading the dataset in memory"))
	assert.Equal(t, crmsync.EUNAVAILABLE, crmsync.ErrorCode(busy))
	fault := Unavailable("routing", "create", replyErr("ERR Error running script"))
	assert.Equal(t, crmsync.EINTERNAL, crmsync.ErrorCode(fault))
	gone := Unavailable("routing", "create", context.Canceled)
	assert.ErrorIs(t, gone, context.Canceled)
	assert.Contains(t, down.Error(), "routing: create: ")
}

// replyErr is an error the server answered, as go-redis marks them.
type replyErr string

func (e replyErr) Error() string { return string(e) }
func (replyErr) RedisError()     {}
