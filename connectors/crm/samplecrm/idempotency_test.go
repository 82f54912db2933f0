package samplecrm

import (
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIdempotencyKey(t *testing.T) {
	c := start(t, Options{})
	key := withHeader("Idempotency-Key", "session-42-create-account")

	first := c.call(t, http.MethodPost, "/api/accounts", `{"name":"A"}`, key)
	require.Equal(t, http.StatusCreated, first.Status)
	again := c.call(t, http.MethodPost, "/api/accounts", `{"name":"A, sent twice"}`, key)
	assert.Equal(t, first.Status, again.Status)
	assert.Equal(t, string(first.Body), string(again.Body))
	assert.Equal(t, first.Header.Get("Location"), again.Header.Get("Location"))
	assert.Equal(t, "application/json", again.Header.Get("Content-Type"))
	assert.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	assert.Empty(t, first.Header.Get("Idempotent-Replayed"))
	assert.Len(t, c.Accounts(), 1)

	// Another key, or no key, creates another account.
	c.mustCreate(t, "/api/accounts", `{"name":"B"}`, withHeader("Idempotency-Key", "other"))
	c.mustCreate(t, "/api/accounts", `{"name":"C"}`)
	assert.Len(t, c.Accounts(), 3)

	// Keys are per path: the same key on records creates a record.
	r := c.call(t, http.MethodPost, "/api/records", `{"account_id":"1"}`, key)
	require.Equal(t, http.StatusCreated, r.Status)
	assert.Equal(t, "1", r.data(t)["account_id"])

	// A key is only spent by a success.
	failKey := withHeader("Idempotency-Key", "retry-me")
	r = c.call(t, http.MethodPost, "/api/records", `{"account_id":"99"}`, failKey)
	assert.Equal(t, http.StatusBadRequest, r.Status)
	r = c.call(t, http.MethodPost, "/api/records", `{"account_id":"2"}`, failKey)
	require.Equal(t, http.StatusCreated, r.Status)
	assert.Equal(t, "2", r.data(t)["account_id"])
	assert.Len(t, c.Records(), 2)

	// The key does not apply to other methods.
	r = c.call(t, http.MethodPatch, "/api/accounts/1", `{"name":"Z"}`, key)
	assert.Equal(t, "Z", r.data(t)["name"])
}

func TestIdempotencyKeyConcurrent(t *testing.T) {
	c := start(t, Options{})
	const n = 20
	bodies := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := c.call(t, http.MethodPost, "/api/accounts", `{"name":"racer"}`, withHeader("Idempotency-Key", "same"))
			assert.Equal(t, http.StatusCreated, r.Status)
			bodies[i] = string(r.Body)
		})
	}
	wg.Wait()
	assert.Len(t, c.Accounts(), 1)
	for _, b := range bodies {
		assert.Equal(t, bodies[0], b)
	}
}

func TestIdempotencyForgetsOldestKeys(t *testing.T) {
	var id idempotency
	for i := range idempotencyKeep + 10 {
		key := itoa(i + 1)
		e, owner := id.claim(key)
		require.True(t, owner)
		rec := &recorder{ResponseWriter: discardWriter{}, status: http.StatusCreated}
		id.finish(key, e, rec)
	}
	assert.Len(t, id.entries, idempotencyKeep)
	_, owner := id.claim("1")
	assert.True(t, owner, "the oldest key was forgotten")
	_, owner = id.claim(itoa(idempotencyKeep + 10))
	assert.False(t, owner, "the newest key is remembered")
}

type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}
