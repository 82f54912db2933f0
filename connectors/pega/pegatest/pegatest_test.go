package pegatest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/crmsync/crmsync/connectors/pega/pegatest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const good = `{"_conversation_id":"3bc1c3b45ea911ea88f277fee9bcd8c0","_agent_id":"laura@pegasystems.com"}`

func newServer(tb testing.TB) *pegatest.Server {
	tb.Helper()
	return pegatest.New(tb, pegatest.Config{Username: "u", Password: "p", Token: "t", ClientID: "id", ClientSecret: "secret"})
}

type reply struct {
	status int
	body   string
}

func send(tb testing.TB, method, url, contentType, body string, prep func(*http.Request)) reply {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(tb, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if prep != nil {
		prep(req)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return reply{resp.StatusCode, string(b)}
}

func withBasic(r *http.Request) { r.SetBasicAuth("u", "p") }

func TestChecksRequests(t *testing.T) {
	srv := newServer(t)
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		auth        func(*http.Request)
		status      int
		answer      string
	}{
		{"right", http.MethodPost, pegatest.Path, "application/json", good, withBasic, 200, "Success"},
		{"charset is fine", http.MethodPost, pegatest.Path, "application/json; charset=utf-8", good, withBasic, 200, "Success"},
		{"bearer", http.MethodPost, pegatest.Path, "application/json", good, func(r *http.Request) { r.Header.Set("Authorization", "Bearer t") }, 200, "Success"},
		{"wrong method", http.MethodPut, pegatest.Path, "application/json", good, withBasic, 405, "method must be POST"},
		{"query", http.MethodPost, pegatest.Path + "?x=1", "application/json", good, withBasic, 400, "unexpected query"},
		{"no credential", http.MethodPost, pegatest.Path, "application/json", good, nil, 401, "unauthorized"},
		{"wrong password", http.MethodPost, pegatest.Path, "application/json", good, func(r *http.Request) { r.SetBasicAuth("u", "x") }, 401, "unauthorized"},
		{"unknown bearer", http.MethodPost, pegatest.Path, "application/json", good, func(r *http.Request) { r.Header.Set("Authorization", "Bearer x") }, 401, "unauthorized"},
		{"no content type", http.MethodPost, pegatest.Path, "", good, withBasic, 415, "content type"},
		{"form content type", http.MethodPost, pegatest.Path, "application/x-www-form-urlencoded", good, withBasic, 415, "content type"},
		{"not an object", http.MethodPost, pegatest.Path, "application/json", `[]`, withBasic, 400, "JSON object"},
		{"agent missing", http.MethodPost, pegatest.Path, "application/json", `{"_conversation_id":"c"}`, withBasic, 400, "_agent_id is missing"},
		{"key misspelt", http.MethodPost, pegatest.Path, "application/json", `{"_conversation_id":"c","_agent_id ":"a"}`, withBasic, 400, `unexpected key "_agent_id "`},
		{"extra key", http.MethodPost, pegatest.Path, "application/json", `{"_conversation_id":"c","_agent_id":"a","x":1}`, withBasic, 400, `unexpected key "x"`},
		{"key twice", http.MethodPost, pegatest.Path, "application/json", `{"_conversation_id":"c","_agent_id":"a","_agent_id":"a"}`, withBasic, 400, "given twice"},
		{"empty value", http.MethodPost, pegatest.Path, "application/json", `{"_conversation_id":"","_agent_id":"a"}`, withBasic, 400, "_conversation_id is empty"},
		{"number value", http.MethodPost, pegatest.Path, "application/json", `{"_conversation_id":1,"_agent_id":"a"}`, withBasic, 400, "must be a string"},
		{"trailing data", http.MethodPost, pegatest.Path, "application/json", good + `{}`, withBasic, 400, "more after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(srv.Calls())
			r := send(t, tt.method, srv.URL()+tt.path, tt.contentType, tt.body, tt.auth)
			assert.Equal(t, tt.status, r.status, r.body)
			calls := srv.Calls()[before:]
			require.Len(t, calls, 1)
			assert.Equal(t, tt.status, calls[0].Status)
			assert.Contains(t, calls[0].Answer, tt.answer)
			if tt.status == 200 {
				assert.JSONEq(t, `{"_status":"Success"}`, r.body)
				assert.Equal(t, "laura@pegasystems.com", calls[0].Agent)
			}
		})
	}
	assert.Len(t, srv.Assignments(), 3)

	r := send(t, http.MethodPost, srv.URL()+"/prweb/api/other", "application/json", good, withBasic)
	assert.Equal(t, http.StatusNotFound, r.status)
}

func TestFaults(t *testing.T) {
	srv := newServer(t)
	srv.SetFault(pegatest.Fault{Status: http.StatusServiceUnavailable, RetryAfter: 5, Count: 2})
	for range 2 {
		r := send(t, http.MethodPost, srv.URL()+pegatest.Path, "application/json", good, withBasic)
		assert.Equal(t, http.StatusServiceUnavailable, r.status)
	}
	r := send(t, http.MethodPost, srv.URL()+pegatest.Path, "application/json", good, withBasic)
	assert.Equal(t, http.StatusOK, r.status, "the fault ends after Count requests")

	srv.SetFault(pegatest.Fault{Mode: pegatest.FaultFail})
	for range 2 {
		r = send(t, http.MethodPost, srv.URL()+pegatest.Path, "application/json", good, withBasic)
		assert.JSONEq(t, `{"_status":"Fail"}`, r.body)
	}
	r = send(t, http.MethodPost, srv.URL()+pegatest.Path, "application/json", `{}`, withBasic)
	assert.Equal(t, http.StatusBadRequest, r.status, "Fail is for requests that pass the checks")
	srv.ClearFault()
	r = send(t, http.MethodPost, srv.URL()+pegatest.Path, "application/json", good, withBasic)
	assert.JSONEq(t, `{"_status":"Success"}`, r.body)
	assert.Len(t, srv.Assignments(), 2)
}

func TestStopStart(t *testing.T) {
	srv := newServer(t)
	srv.Stop()
	_, err := http.Post(srv.URL()+pegatest.Path, "application/json", strings.NewReader(good))
	require.Error(t, err, "connections are refused")
	require.NoError(t, srv.Start())
	r := send(t, http.MethodPost, srv.URL()+pegatest.Path, "application/json", good, withBasic)
	assert.Equal(t, http.StatusOK, r.status)
}

func TestTokenEndpoint(t *testing.T) {
	srv := newServer(t)
	form := func(v url.Values) string { return v.Encode() }
	tests := []struct {
		name   string
		body   string
		auth   func(*http.Request)
		status int
	}{
		{"basic client auth", form(url.Values{"grant_type": {"client_credentials"}}), func(r *http.Request) { r.SetBasicAuth("id", "secret") }, 200},
		{"form client auth", form(url.Values{"grant_type": {"client_credentials"}, "client_id": {"id"}, "client_secret": {"secret"}}), nil, 200},
		{"wrong secret", form(url.Values{"grant_type": {"client_credentials"}}), func(r *http.Request) { r.SetBasicAuth("id", "nope") }, 401},
		{"wrong grant", form(url.Values{"grant_type": {"password"}}), func(r *http.Request) { r.SetBasicAuth("id", "secret") }, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := send(t, http.MethodPost, srv.TokenURL(), "application/x-www-form-urlencoded", tt.body, tt.auth)
			require.Equal(t, tt.status, r.status, r.body)
			if tt.status != 200 {
				return
			}
			var tok struct {
				AccessToken string `json:"access_token"`
				ExpiresIn   int    `json:"expires_in"`
			}
			require.NoError(t, json.Unmarshal([]byte(r.body), &tok))
			assert.Equal(t, 3600, tok.ExpiresIn)
			ok := send(t, http.MethodPost, srv.URL()+pegatest.Path, "application/json", good, func(r *http.Request) {
				r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			})
			assert.Equal(t, http.StatusOK, ok.status)
		})
	}
	assert.Equal(t, 2, srv.TokenRequests())
	srv.RevokeTokens()
	assert.Empty(t, srv.IssuedTokens())
}
