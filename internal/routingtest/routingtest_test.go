package routingtest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/internal/redistest"
)

func TestCursorReadsEachEntryOnce(t *testing.T) {
	rdb := redistest.Client(t)
	key := AgentEvents(Prefix(t, rdb), "sara")
	add := func(v string) string {
		id, err := rdb.XAdd(t.Context(), &redis.XAddArgs{Stream: key, Values: []string{"v", v}}).Result()
		require.NoError(t, err)
		return id
	}
	values := func(msgs []redis.XMessage) []string {
		out := []string{}
		for _, m := range msgs {
			out = append(out, m.Values["v"].(string))
		}
		return out
	}
	c := NewCursor(rdb)
	assert.Empty(t, c.Read(t, key), "an absent stream reads as empty")
	assert.Equal(t, "", c.Last(key))

	add("a")
	b := add("b")
	assert.Equal(t, []string{"a", "b"}, values(c.Read(t, key)))
	assert.Equal(t, b, c.Last(key))
	assert.Empty(t, c.Read(t, key), "nothing new")

	add("c")
	add("d")
	assert.Equal(t, []string{"c", "d"}, values(c.Read(t, key)))

	c.Seek(key, b)
	assert.Equal(t, []string{"c", "d"}, values(c.Read(t, key)), "read again past b")
	c.Seek(key, "")
	assert.Equal(t, []string{"a", "b", "c", "d"}, values(c.Read(t, key)), "read again from the start")
}

func TestDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":{"field":"id","message":"bad id","auth":"` + r.Header.Get("Authorization") + `"}}`))
		}
	}))
	t.Cleanup(srv.Close)

	a := Do(t, srv.Client(), Request(t, http.MethodPost, srv.URL+"/error", nil, "tok"))
	assert.Equal(t, http.StatusBadRequest, a.Status)
	assert.Equal(t, "application/json", a.Header.Get("Content-Type"))
	assert.Equal(t, "id", a.ErrField())
	assert.Equal(t, "bad id", a.ErrMessage())
	assert.Equal(t, "Bearer tok", a.Body["error"].(map[string]any)["auth"])

	a = Do(t, srv.Client(), Request(t, http.MethodGet, srv.URL+"/empty", nil, ""))
	assert.Equal(t, http.StatusNoContent, a.Status)
	assert.Nil(t, a.Body)
	assert.Empty(t, a.ErrField())
}
