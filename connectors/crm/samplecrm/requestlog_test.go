package samplecrm

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRequestLog(t *testing.T) {
	c := start(t, Options{HeaderName: "X-Api-Key", HeaderValue: "k-123"})
	key := withHeader("X-Api-Key", "k-123")

	c.mustCreate(t, "/api/accounts", `{"name":"A"}`, key, withHeader("X-Trace", "t1"))
	c.call(t, http.MethodGet, "/api/accounts?phone=%2A4444", nil, withHeader("Authorization", "Bearer abc"), key)
	c.call(t, http.MethodGet, "/api/accounts?id=1", nil)

	log := c.Requests()
	require.Len(t, log, 3)

	assert.Equal(t, http.MethodPost, log[0].Method)
	assert.Equal(t, "/api/accounts", log[0].Path)
	assert.Equal(t, `{"name":"A"}`, log[0].Body)
	assert.Equal(t, http.StatusCreated, log[0].Status)
	assert.Equal(t, "t1", log[0].Header.Get("X-Trace"))
	assert.Equal(t, "REDACTED", log[0].Header.Get("X-Api-Key"))
	assert.False(t, log[0].Time.IsZero())

	assert.Equal(t, "phone=%2A4444", log[1].RawQuery)
	assert.Equal(t, "REDACTED", log[1].Header.Get("Authorization"))
	assert.Equal(t, http.StatusOK, log[1].Status)

	assert.Equal(t, http.StatusUnauthorized, log[2].Status)

	// Copies: changing one does not change the log.
	log[0].Header.Set("X-Trace", "changed")
	assert.Equal(t, "t1", c.Requests()[0].Header.Get("X-Trace"))

	r := c.call(t, http.MethodGet, "/_control/requests", nil, key)
	require.Equal(t, http.StatusOK, r.Status)
	assert.Len(t, r.items(t), 3, "a request is logged once it is answered")

	c.ResetRequests()
	assert.Empty(t, c.Requests())
	assert.Equal(t, http.StatusNoContent, c.call(t, http.MethodDelete, "/_control/requests", nil, key).Status)
	assert.Len(t, c.Requests(), 1, "only the DELETE itself")
}

func TestRequestLogKeepsBodyStart(t *testing.T) {
	c := start(t, Options{})
	rec := newRecord(t, c)
	data := bytes.Repeat([]byte("0123456789"), 20<<10) // 200 KiB
	body := `{"file":"` + base64.StdEncoding.EncodeToString(data) + `"}`
	c.mustCreate(t, "/api/records/"+rec+"/attachments", body)

	log := c.Requests()
	last := log[len(log)-1]
	assert.Len(t, last.Body, logBodyMax)
	assert.Equal(t, body[:logBodyMax], last.Body)
	assert.Equal(t, data, c.Attachments(rec)[0].Bytes, "the handler still read the whole body")
}

func TestRequestLogRedactsTokenRequests(t *testing.T) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"rt"}, "client_id": {"id"}, "client_secret": {"shh"}}
	got, err := url.ParseQuery(redactForm(form.Encode()))
	require.NoError(t, err)
	assert.Equal(t, "refresh_token", got.Get("grant_type"))
	assert.Equal(t, "id", got.Get("client_id"))
	assert.Equal(t, "REDACTED", got.Get("client_secret"))
	assert.Equal(t, "REDACTED", got.Get("refresh_token"))
	assert.Equal(t, "REDACTED", redactForm("%zz"))
}

func TestRequestRingIsBounded(t *testing.T) {
	assert.Equal(t, 10_000, New(Options{}).requests.size)

	rr := requestRing{size: 3}
	for i := range 5 {
		rr.add(RequestLog{Path: itoa(i + 1)})
	}
	var paths []string
	for _, e := range rr.list() {
		paths = append(paths, e.Path)
	}
	assert.Equal(t, []string{"3", "4", "5"}, paths)
}
