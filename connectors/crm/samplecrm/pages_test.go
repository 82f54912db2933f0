package samplecrm

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPages(t *testing.T) {
	c := start(t, Options{BasicUser: "u", BasicPassword: "p"})
	auth := withBasic("u", "p")
	a := c.mustCreate(t, "/api/accounts", `{"name":"<script>alert(1)</script>","phone":"+1 222 333 4444","note":"<b>vip</b>"}`, auth)
	rec := c.mustCreate(t, "/api/records", `{"account_id":"`+a+`","subject":"Call & chat"}`, auth)
	c.mustCreate(t, "/api/records/"+rec+"/comments", `{"comment":"<img src=x onerror=alert(1)>","format":"html"}`, auth)
	c.mustCreate(t, "/api/records/"+rec+"/attachments", `{"file":"aGk=","filename":"\"quoted\".txt"}`, auth)

	r := c.call(t, http.MethodGet, "/accounts/"+a, nil)
	require.Equal(t, http.StatusOK, r.Status)
	page := string(r.Body)
	assert.Equal(t, "text/html; charset=utf-8", r.Header.Get("Content-Type"))
	assert.Contains(t, page, "crmsync sample CRM (demo)")
	assert.Contains(t, page, "&lt;script&gt;alert(1)&lt;/script&gt;")
	assert.NotContains(t, page, "<script>")
	assert.Contains(t, page, "&lt;b&gt;vip&lt;/b&gt;")
	assert.Contains(t, page, `href="/records/`+rec+`"`)
	assert.Contains(t, page, "Call &amp; chat")

	r = c.call(t, http.MethodGet, "/records/"+rec, nil)
	require.Equal(t, http.StatusOK, r.Status)
	page = string(r.Body)
	assert.Contains(t, page, "crmsync sample CRM (demo)")
	assert.Contains(t, page, "&lt;img src=x onerror=alert(1)&gt;")
	assert.NotContains(t, page, "<img")
	assert.Contains(t, page, `href="/api/records/`+rec+`/attachments/1"`)
	assert.Contains(t, page, "&#34;quoted&#34;.txt")
	assert.Contains(t, page, `href="/accounts/`+a+`"`)

	r = c.call(t, http.MethodGet, "/", nil)
	require.Equal(t, http.StatusOK, r.Status)
	assert.Contains(t, string(r.Body), `href="/accounts/`+a+`"`)

	for _, path := range []string{"/accounts/9", "/records/9", "/records/x"} {
		r = c.call(t, http.MethodGet, path, nil)
		assert.Equal(t, http.StatusNotFound, r.Status, path)
		assert.Contains(t, string(r.Body), "crmsync sample CRM (demo)")
	}
}
