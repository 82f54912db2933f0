package sftest_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/connectors/salesforce"
	"github.com/crmsync/crmsync/connectors/salesforce/sftest"
)

// raw is a hand-built request, valid until a case spoils it.
type raw struct {
	method, path, contentType string
	headers                   map[string]string
	body                      []byte
}

func jwt(t *testing.T, key *rsa.PrivateKey, header string, claims map[string]any) string {
	t.Helper()
	c, err := json.Marshal(claims)
	require.NoError(t, err)
	signing := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString(c)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	require.NoError(t, err)
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func goodClaims() map[string]any {
	now := time.Now().Unix()
	return map[string]any{"iss": sftest.ClientID, "sub": sftest.Subject, "aud": salesforce.DefaultAudience, "iat": now, "exp": now + 120}
}

func multipartBody(t *testing.T, name, partType string, payload string) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="`+name+`"`)
	h.Set("Content-Type", partType)
	p, err := mw.CreatePart(h)
	require.NoError(t, err)
	_, _ = p.Write([]byte(payload))
	require.NoError(t, mw.Close())
	return b.Bytes(), mw.FormDataContentType()
}

func TestServerRefusesWhatTheSpecDoesNotAllow(t *testing.T) {
	key, _ := sftest.Key(t)
	const hdr = `{"alg":"RS256","typ":"JWT"}`
	valid := func(t *testing.T) raw {
		body, ct := multipartBody(t, "json", "application/json",
			`{"conversationIdentifier":"c-1","routingType":"Initial","routingInfo":{"queueId":"00GHs000001QuEu"}}`)
		return raw{method: http.MethodPost, path: sftest.Path, contentType: ct, body: body, headers: map[string]string{
			"Authorization":        "Bearer " + jwt(t, key, hdr, goodClaims()),
			"OrgId":                sftest.OrgID,
			"AuthorizationContext": sftest.AuthorizationContext,
			"RequestId":            uuid.NewString(),
		}}
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	claims := func(mod func(map[string]any)) map[string]any { c := goodClaims(); mod(c); return c }
	payload := func(t *testing.T, r *raw, js string) {
		r.body, r.contentType = multipartBody(t, "json", "application/json", js)
	}

	cases := []struct {
		name    string
		spoil   func(t *testing.T, r *raw)
		status  int
		problem string
	}{
		{"valid", func(*testing.T, *raw) {}, 200, ""},
		{"wrong path", func(_ *testing.T, r *raw) { r.path = "/v1/route" }, 404, "no such path"},
		{"put", func(_ *testing.T, r *raw) { r.method = http.MethodPut }, 405, "method"},
		{"no auth", func(_ *testing.T, r *raw) { delete(r.headers, "Authorization") }, 401, "bearer"},
		{"other key", func(t *testing.T, r *raw) { r.headers["Authorization"] = "Bearer " + jwt(t, other, hdr, goodClaims()) }, 401, "signature"},
		{"alg none", func(t *testing.T, r *raw) {
			r.headers["Authorization"] = "Bearer " + jwt(t, key, `{"alg":"none"}`, goodClaims())
		}, 401, "alg"},
		{"expired", func(t *testing.T, r *raw) {
			r.headers["Authorization"] = "Bearer " + jwt(t, key, hdr, claims(func(c map[string]any) { c["exp"] = time.Now().Unix() - 1 }))
		}, 401, "expired"},
		{"long-lived", func(t *testing.T, r *raw) {
			r.headers["Authorization"] = "Bearer " + jwt(t, key, hdr, claims(func(c map[string]any) { c["exp"] = time.Now().Unix() + 3600 }))
		}, 401, "longer"},
		{"wrong iss", func(t *testing.T, r *raw) {
			r.headers["Authorization"] = "Bearer " + jwt(t, key, hdr, claims(func(c map[string]any) { c["iss"] = "x" }))
		}, 401, "iss"},
		{"no sub", func(t *testing.T, r *raw) {
			r.headers["Authorization"] = "Bearer " + jwt(t, key, hdr, claims(func(c map[string]any) { delete(c, "sub") }))
		}, 401, "sub"},
		{"wrong aud", func(t *testing.T, r *raw) {
			r.headers["Authorization"] = "Bearer " + jwt(t, key, hdr, claims(func(c map[string]any) { c["aud"] = "https://test.salesforce.com" }))
		}, 401, "aud"},
		{"no org", func(_ *testing.T, r *raw) { delete(r.headers, "OrgId") }, 400, "OrgId"},
		{"wrong org", func(_ *testing.T, r *raw) { r.headers["OrgId"] = "00DHs000000Tst2" }, 400, "OrgId"},
		{"no auth context", func(_ *testing.T, r *raw) { delete(r.headers, "AuthorizationContext") }, 400, "AuthorizationContext"},
		{"request id not a guid", func(_ *testing.T, r *raw) { r.headers["RequestId"] = "42" }, 400, "GUID"},
		{"json content type", func(_ *testing.T, r *raw) { r.contentType = "application/json" }, 400, "multipart"},
		{"part misnamed", func(t *testing.T, r *raw) {
			r.body, r.contentType = multipartBody(t, "payload", "application/json", `{}`)
		}, 400, "unexpected part"},
		{"part not json", func(t *testing.T, r *raw) {
			r.body, r.contentType = multipartBody(t, "json", "text/plain", `{}`)
		}, 400, "application/json"},
		{"unknown key", func(t *testing.T, r *raw) {
			payload(t, r, `{"conversationIdentifier":"c","routingType":"Initial","priority":1}`)
		}, 400, "unexpected key"},
		{"bad routing type", func(t *testing.T, r *raw) { payload(t, r, `{"conversationIdentifier":"c","routingType":"Push"}`) }, 400, "routingType"},
		{"no conversation", func(t *testing.T, r *raw) { payload(t, r, `{"routingType":"Initial"}`) }, 400, "conversationIdentifier"},
		{"flow and queue", func(t *testing.T, r *raw) {
			payload(t, r, `{"conversationIdentifier":"c","routingType":"Initial","routingInfo":{"queueId":"q","flow":{"flowId":"f","queueId":"q"}}}`)
		}, 400, "both"},
		{"flow without fallback", func(t *testing.T, r *raw) {
			payload(t, r, `{"conversationIdentifier":"c","routingType":"Initial","routingInfo":{"flow":{"flowId":"f"}}}`)
		}, 400, "flowId and queueId"},
		{"attributes without flow", func(t *testing.T, r *raw) {
			payload(t, r, `{"conversationIdentifier":"c","routingType":"Initial","routingInfo":{"queueId":"q","routingAttributes":{"a":"b"}}}`)
		}, 400, "routingAttributes"},
		{"empty routing info", func(t *testing.T, r *raw) {
			payload(t, r, `{"conversationIdentifier":"c","routingType":"Initial","routingInfo":{}}`)
		}, 400, "neither"},
		{"delete with form", func(_ *testing.T, r *raw) { r.method = http.MethodDelete }, 400, "application/json"},
		{"delete unknown", func(_ *testing.T, r *raw) {
			r.method, r.contentType, r.body = http.MethodDelete, "application/json", []byte(`{"conversationIdentifier":"nope"}`)
		}, 404, "no pending routing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := sftest.Start(t, nil)
			r := valid(t)
			tc.spoil(t, &r)
			req, err := http.NewRequestWithContext(context.Background(), r.method, srv.URL()+r.path, bytes.NewReader(r.body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", r.contentType)
			for k, v := range r.headers {
				req.Header[k] = []string{v}
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tc.status, resp.StatusCode)
			calls := srv.Calls()
			require.Len(t, calls, 1)
			assert.Contains(t, calls[0].Problem, tc.problem)
			if tc.problem == "" {
				assert.Empty(t, calls[0].Problem)
				assert.Equal(t, []string{"c-1"}, srv.Pending())
			}
		})
	}
	t.Run("request id reused", func(t *testing.T) {
		srv := sftest.Start(t, nil)
		r := valid(t)
		for i, want := range []int{200, 400} {
			req, err := http.NewRequest(r.method, srv.URL()+r.path, bytes.NewReader(r.body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", r.contentType)
			for k, v := range r.headers {
				req.Header[k] = []string{v}
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, want, resp.StatusCode, "call %d", i)
		}
		assert.Contains(t, srv.Calls()[1].Problem, "used before")
	})
}
