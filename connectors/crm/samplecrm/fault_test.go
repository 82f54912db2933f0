package samplecrm

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFaultStatusWithCount(t *testing.T) {
	c := start(t, Options{})
	a := c.mustCreate(t, "/api/accounts", `{"name":"A"}`)
	c.SetFault(Fault{Status: http.StatusServiceUnavailable, Count: 2, PathPrefix: "/api/records"})

	// Other paths are untouched and do not use up the count.
	assert.Equal(t, http.StatusOK, c.call(t, http.MethodGet, "/api/accounts/"+a, nil).Status)

	body := `{"account_id":"` + a + `"}`
	for range 2 {
		r := c.call(t, http.MethodPost, "/api/records", body)
		assert.Equal(t, http.StatusServiceUnavailable, r.Status)
		assert.Contains(t, r.errorText(t), "injected fault")
	}
	assert.Equal(t, http.StatusCreated, c.call(t, http.MethodPost, "/api/records", body).Status)
	assert.Len(t, c.Records(), 1, "faulted requests never reached the handler")
}

func TestFaultRetryAfter(t *testing.T) {
	c := start(t, Options{})
	c.SetFault(Fault{Status: http.StatusTooManyRequests, RetryAfter: 7})
	r := c.call(t, http.MethodGet, "/api/accounts?id=1", nil)
	assert.Equal(t, http.StatusTooManyRequests, r.Status)
	assert.Equal(t, "7", r.Header.Get("Retry-After"))
	c.ClearFault()
	assert.Equal(t, http.StatusOK, c.call(t, http.MethodGet, "/api/accounts?id=1", nil).Status)
}

func TestZeroFault(t *testing.T) {
	c := start(t, Options{})
	c.SetFault(Fault{})
	for range 3 {
		assert.Equal(t, http.StatusServiceUnavailable, c.call(t, http.MethodGet, "/api/accounts?id=1", nil).Status)
	}
	assert.Equal(t, http.StatusOK, c.call(t, http.MethodGet, "/", nil).Status, "pages are not /api")
	assert.Equal(t, http.StatusOK, c.call(t, http.MethodGet, "/_control/fail", nil).Status)

	// A prefix can reach beyond /api, but never /_control.
	c.SetFault(Fault{Status: http.StatusInternalServerError, PathPrefix: "/"})
	assert.Equal(t, http.StatusInternalServerError, c.call(t, http.MethodGet, "/", nil).Status)
	assert.Equal(t, http.StatusNoContent, c.call(t, http.MethodDelete, "/_control/fail", nil).Status)
	assert.Equal(t, http.StatusOK, c.call(t, http.MethodGet, "/", nil).Status)
}

func TestFaultUntil(t *testing.T) {
	c := start(t, Options{})
	c.SetFault(Fault{Status: http.StatusBadGateway, Until: time.Now().Add(100 * time.Millisecond)})
	assert.Equal(t, http.StatusBadGateway, c.call(t, http.MethodGet, "/api/accounts?id=1", nil).Status)
	time.Sleep(150 * time.Millisecond)
	assert.Equal(t, http.StatusOK, c.call(t, http.MethodGet, "/api/accounts?id=1", nil).Status)
}

func TestFaultSlow(t *testing.T) {
	c := start(t, Options{})

	t.Run("serves after the delay", func(t *testing.T) {
		c.SetFault(Fault{Mode: FaultSlow, Delay: 100 * time.Millisecond, Count: 1})
		began := time.Now()
		r := c.call(t, http.MethodPost, "/api/accounts", `{"name":"slow"}`)
		assert.Equal(t, http.StatusCreated, r.Status)
		assert.GreaterOrEqual(t, time.Since(began), 100*time.Millisecond)
	})

	t.Run("honours cancellation", func(t *testing.T) {
		c.ResetRequests()
		c.SetFault(Fault{Mode: FaultSlow, Delay: time.Minute})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/api/accounts?id=1", nil)
		require.NoError(t, err)
		began := time.Now()
		_, err = http.DefaultClient.Do(req)
		require.Error(t, err)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Less(t, time.Since(began), 5*time.Second)

		// The handler gives up too instead of sleeping for a minute.
		require.Eventually(t, func() bool { return len(c.Requests()) == 1 }, 5*time.Second, 10*time.Millisecond)
		assert.Equal(t, 0, c.Requests()[0].Status)
		c.ClearFault()
	})
}

func TestFaultDrop(t *testing.T) {
	c := start(t, Options{})
	c.SetFault(Fault{Mode: FaultDrop, Count: 1})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

	resp, err := client.Get(c.url + "/api/accounts?id=1")
	if resp != nil {
		resp.Body.Close()
	}
	require.Error(t, err, "the connection closes without an answer")

	resp, err = client.Get(c.url + "/api/accounts?id=1")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	log := c.Requests()
	require.Len(t, log, 2)
	assert.Equal(t, 0, log[0].Status)
	assert.Equal(t, http.StatusOK, log[1].Status)
}

func TestFaultControlEndpoint(t *testing.T) {
	c := start(t, Options{})

	r := c.call(t, http.MethodPost, "/_control/fail", `{"status":503,"count":2,"path_prefix":"/api/records","mode":"status","retry_after":3}`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.JSONEq(t, `{"data":{"mode":"status","status":503,"retry_after":3,"path_prefix":"/api/records","count":2,"left":2}}`, string(r.Body))

	r = c.call(t, http.MethodGet, "/api/records?status=open", nil)
	assert.Equal(t, http.StatusServiceUnavailable, r.Status)
	assert.Equal(t, "3", r.Header.Get("Retry-After"))

	r = c.call(t, http.MethodGet, "/_control/fail", nil)
	assert.Equal(t, float64(1), r.data(t)["left"])

	assert.Equal(t, http.StatusNoContent, c.call(t, http.MethodDelete, "/_control/fail", nil).Status)
	assert.Equal(t, http.StatusOK, c.call(t, http.MethodGet, "/api/records?status=open", nil).Status)
	assert.JSONEq(t, `{"data":null}`, string(c.call(t, http.MethodGet, "/_control/fail", nil).Body))

	r = c.call(t, http.MethodPost, "/_control/fail", `{"mode":"slow","delay_ms":20,"for_ms":60000}`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, "slow", r.data(t)["mode"])
	assert.NotEmpty(t, r.data(t)["until"])
	assert.Equal(t, http.StatusOK, c.call(t, http.MethodGet, "/api/records?status=open", nil).Status)

	r = c.call(t, http.MethodPost, "/_control/fail", `{"mode":"drop","count":1}`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	c.ClearFault()

	for _, bad := range []string{
		`{"mode":"explode"}`,
		`{"status":42}`,
		`{"status":503,"colour":"red"}`,
		`{"mode":"slow"}`,
		`{"count":-1}`,
		`{"delay_ms":-5,"mode":"slow"}`,
		`{"until":"2030-01-01T00:00:00Z"}`,
		`not json`,
	} {
		r := c.call(t, http.MethodPost, "/_control/fail", bad)
		assert.Equal(t, http.StatusBadRequest, r.Status, bad)
		assert.NotEmpty(t, r.errorText(t), bad)
	}
	assert.JSONEq(t, `{"data":null}`, string(c.call(t, http.MethodGet, "/_control/fail", nil).Body))
}
