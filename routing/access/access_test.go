package access

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
)

func TestAgentTokens(t *testing.T) {
	_, err := NewAgentTokens("short")
	require.Error(t, err)
	assert.Equal(t, crmsync.EINVALID, crmsync.ErrorCode(err))

	tok, err := NewAgentTokens("0123456789abcdef-secret")
	require.NoError(t, err)
	a := tok.Issue("sara@example.com")
	assert.NoError(t, tok.Verify(a, "sara@example.com"))
	assert.Equal(t, a, tok.Issue("sara@example.com"), "stateless: the same agent gets the same token")
	assert.ErrorIs(t, tok.Verify(a, "bob"), ErrBadToken, "another agent")
	assert.ErrorIs(t, tok.Verify(a, ""), ErrBadToken)
	assert.ErrorIs(t, tok.Verify(a[:len(a)-1], "sara@example.com"), ErrBadToken, "cut short")
	assert.ErrorIs(t, tok.Verify("agt_!!!", "sara@example.com"), ErrBadToken, "not base64")
	assert.ErrorIs(t, tok.Verify(a[len(tokenPrefix):], "sara@example.com"), ErrBadToken, "no prefix")

	other, err := NewAgentTokens("another-secret-of-enough-length")
	require.NoError(t, err)
	assert.ErrorIs(t, other.Verify(a, "sara@example.com"), ErrBadToken, "a changed secret revokes every token")
}

func TestCaller(t *testing.T) {
	tok, err := NewAgentTokens("0123456789abcdef-secret")
	require.NoError(t, err)
	auth := &Authenticator{APITokens: []crmsync.Secret{"api-token-1"}, Agents: tok}
	sara := tok.Issue("sara")

	cases := []struct {
		name    string
		header  string
		query   string
		agent   string
		want    Caller
		wantErr bool
	}{
		{name: "api token", header: "Bearer api-token-1", agent: "sara", want: Caller{System: true}},
		{name: "api token, no agent", header: "Bearer api-token-1", want: Caller{System: true}},
		{name: "scheme in any case", header: "bearer api-token-1", want: Caller{System: true}},
		{name: "agent token", header: "Bearer " + sara, agent: "sara", want: Caller{Agent: "sara"}},
		{name: "agent token in the query", query: "access_token=" + sara, agent: "sara", want: Caller{Agent: "sara"}},
		{name: "agent token for another agent", header: "Bearer " + sara, agent: "bob", wantErr: true},
		{name: "agent token with no agent named", header: "Bearer " + sara, wantErr: true},
		{name: "wrong api token", header: "Bearer api-token-2", wantErr: true},
		{name: "basic scheme", header: "Basic api-token-1", wantErr: true},
		{name: "nothing", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/x?"+tc.query, nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			got, err := auth.Caller(r, tc.agent)
			if tc.wantErr {
				require.Error(t, err)
				assert.True(t, IsUnauthorized(err))
				assert.NotContains(t, err.Error(), "api-token")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestMayActAs(t *testing.T) {
	assert.True(t, Caller{System: true}.MayActAs("anyone"))
	assert.True(t, Caller{Agent: "sara"}.MayActAs("sara"))
	assert.False(t, Caller{Agent: "sara"}.MayActAs("bob"))
	assert.False(t, Caller{}.MayActAs(""))
}

func TestSystem(t *testing.T) {
	tok, err := NewAgentTokens("0123456789abcdef-secret")
	require.NoError(t, err)
	auth := &Authenticator{APITokens: []crmsync.Secret{"api-token-1"}, Agents: tok}
	for _, tc := range []struct {
		name, token string
		code        string
	}{
		{"api token", "api-token-1", ""},
		{"agent token", tok.Issue("sara"), crmsync.EFORBIDDEN},
		{"wrong token", "nope", crmsync.EUNAUTHORIZED},
		{"agent-shaped but short", "agt_abc", crmsync.EUNAUTHORIZED},
		{"none", "", crmsync.EUNAUTHORIZED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/v1/routing/queues", nil)
			if tc.token != "" {
				r.Header.Set("Authorization", "Bearer "+tc.token)
			}
			assert.Equal(t, tc.code, crmsync.ErrorCode(auth.System(r)))
		})
	}
	assert.True(t, LooksLikeAgentToken(tok.Issue("x")))
	assert.False(t, LooksLikeAgentToken("api-token-1"))
}
