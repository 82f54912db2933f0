package crm

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/connectors/crm/samplecrm"
)

// echoCRM answers 400 with everything the request carried: the
// credentials a careless client would then print.
func echoCRM(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		var h strings.Builder
		for _, k := range []string{"Authorization", "X-Api-Key"} {
			fmt.Fprintf(&h, "%s=%s ", k, r.Header.Get(k))
		}
		fmt.Fprintf(w, `{"error":"echo %s url=%s body=%s"}`, h.String(), r.URL.String(), body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &hits
}

func TestSecretsNeverLeak(t *testing.T) {
	const (
		password     = "pw-S3cr3t-basic-7781"
		headerValue  = "hdr-S3cr3t-9932"
		clientSecret = "cs-S3cr3t-4411"
		seedRefresh  = "rt-S3cr3t-seed-5555"
	)
	oauth := func(grant string) Auth {
		return Auth{Type: AuthOAuth2, OAuth2: &OAuth2{
			Grant: grant, ClientID: "crmsync-app", ClientSecret: clientSecret, RefreshToken: seedRefresh,
			RedirectURL: "https://crmsync.example/cb", Scopes: []string{"crm"},
		}}
	}
	tests := []struct {
		name string
		crm  samplecrm.Options
		auth Auth
	}{
		{"basic", samplecrm.Options{BasicUser: "crmsync", BasicPassword: password},
			Auth{Type: AuthBasic, Username: "crmsync", Password: password}},
		{"header", samplecrm.Options{HeaderName: "X-Api-Key", HeaderValue: headerValue},
			Auth{Type: AuthHeader, Headers: []HeaderPair{{Key: "X-Api-Key", Value: headerValue}}}},
		{"oauth2 client credentials", samplecrm.Options{OAuth: &samplecrm.OAuthOptions{ClientID: "crmsync-app", ClientSecret: clientSecret}},
			oauth(GrantClientCredentials)},
		{"oauth2 authorization code", samplecrm.Options{OAuth: &samplecrm.OAuthOptions{ClientID: "crmsync-app", ClientSecret: clientSecret, RotateRefreshTokens: true}},
			oauth(GrantAuthorizationCode)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crm, base := startCRM(t, tt.crm)
			echo, echoHits := echoCRM(t)
			var out bytes.Buffer // everything the client let out
			logger := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
			var rec calls
			ctx := rec.ctx(context.Background())
			errs := func(err error) {
				if err != nil {
					fmt.Fprintf(&out, "error: %s | %+v | %v\n", err.Error(), err, err)
					for e := err; e != nil; {
						fmt.Fprintf(&out, "chain: %v\n", e)
						u, ok := e.(interface{ Unwrap() error })
						if !ok {
							break
						}
						e = u.Unwrap()
					}
				}
			}

			cfg := sampleConfig(base)
			cfg.Auth = tt.auth
			if o := cfg.Auth.OAuth2; o != nil {
				o.AuthURL, o.TokenURL = base+"/oauth/authorize", base+"/oauth/token"
			}
			cfg.Endpoints.UpdateRecord.URL = echo + "/api/records/{RECORD_ID}?from=crmsync"
			store := &memStore{}
			c := newClient(t, cfg, Options{Logger: logger, Tokens: store})

			if cfg.Auth.OAuth2 != nil && cfg.Auth.OAuth2.Grant == GrantAuthorizationCode {
				// The seed refresh token is unknown to the CRM: the refresh fails.
				_, err := c.FindOrCreateAccount(ctx, session(cfg, bond))
				require.Error(t, err)
				errs(err)
				require.NoError(t, c.Exchange(ctx, crm.IssueAuthCode()))
				errs(c.Exchange(ctx, "not-a-code"))
			}

			v := session(cfg, bond)
			_, err := c.FindOrCreateAccount(ctx, v)
			require.NoError(t, err)
			_, err = c.FindOrCreateRecord(ctx, v, false)
			require.NoError(t, err)
			require.NoError(t, c.Comment(ctx, v, "hello"))
			_, err = c.Upload(ctx, v, memFile("a.mp3", FileCallRecordings, []byte("data"), 4, nil))
			require.NoError(t, err)

			// A CRM that echoes the request back in its error.
			err = c.UpdateRecord(ctx, v)
			require.Error(t, err)
			errs(err)
			res, err := c.Send(ctx, EndpointUpdateRecord, v)
			require.Error(t, err)
			errs(err)
			fmt.Fprintf(&out, "%+v\n", res)
			require.Equal(t, int32(2), echoHits.Load())

			// Faults: a 500, a 401 (retried once under OAuth), a dropped connection.
			for _, f := range []samplecrm.Fault{
				{Status: 500, Count: 1},
				{Status: 401, Count: 1},
				{Mode: samplecrm.FaultDrop, Count: 1},
			} {
				crm.SetFault(f)
				_, err := c.FindOrCreateAccount(ctx, session(cfg, bond))
				errs(err)
				crm.ClearFault()
			}
			if cfg.Auth.OAuth2 != nil {
				crm.ExpireAccessTokens()
				require.NoError(t, c.Comment(ctx, v, "after expiry"))

				// A token endpoint that echoes the credentials it was sent.
				bad := sampleConfig(base)
				bad.Auth = tt.auth
				o := *tt.auth.OAuth2
				bad.Auth.OAuth2 = &o
				bad.Auth.OAuth2.AuthURL, bad.Auth.OAuth2.TokenURL = echo+"/authorize", echo+"/token"
				bc := newClient(t, bad, Options{Logger: logger})
				_, err := bc.FindOrCreateAccount(ctx, session(bad, bond))
				require.Error(t, err)
				errs(err)
			}

			for _, name := range []string{EndpointFindAccount, EndpointCreateAccount, EndpointCreateRecord, EndpointUpdateRecord, EndpointComment, EndpointUploadFile} {
				r, err := c.Render(name, v)
				require.NoError(t, err, name)
				fmt.Fprintf(&out, "%+v\n", r)
				res, err := c.Send(ctx, name, v)
				errs(err)
				fmt.Fprintf(&out, "%+v\n", res)
			}
			for _, call := range rec.all() {
				fmt.Fprintf(&out, "%+v\n", call)
			}

			forbidden := []string{password, headerValue, clientSecret, seedRefresh,
				base64.StdEncoding.EncodeToString([]byte("crmsync:" + password)),
				base64.StdEncoding.EncodeToString([]byte("crmsync-app:" + clientSecret)),
			}
			for _, tok := range store.saved {
				forbidden = append(forbidden, tok.AccessToken, tok.RefreshToken)
			}
			text := out.String()
			require.Contains(t, text, `"msg":"crm call"`, "the debug log was written")
			require.NotEmpty(t, rec.all())
			for _, s := range forbidden {
				if s == "" {
					continue
				}
				assert.NotContains(t, text, s)
				assert.NotContains(t, text, url.QueryEscape(s))
			}
			assert.Contains(t, text, redactedMark, "the echoes were redacted, not absent")
		})
	}
}
