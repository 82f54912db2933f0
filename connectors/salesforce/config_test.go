package salesforce_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/salesforce"
	"github.com/crmsync/crmsync/connectors/salesforce/sftest"
)

func validConfig(t *testing.T) salesforce.Config {
	t.Helper()
	_, pemKey := sftest.Key(t)
	return salesforce.Config{
		BaseURL: "https://acme.my.salesforce-scrt.com", OrgID: sftest.OrgID,
		AuthorizationContext: sftest.AuthorizationContext, ClientID: sftest.ClientID,
		Subject: sftest.Subject, PrivateKey: crmsync.Secret(pemKey),
	}
}

func TestConfigProblemsNameTheField(t *testing.T) {
	k, pemKey := sftest.Key(t)
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	smallPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)}))
	// A damaged key: real key material, so an error quoting it would show.
	damaged := strings.Replace(pemKey, "\n", "\nAAAA", 3)

	cases := []struct {
		name  string
		mod   func(*salesforce.Config)
		field string
	}{
		{"no base url", func(c *salesforce.Config) { c.BaseURL = "" }, "base_url"},
		{"ftp", func(c *salesforce.Config) { c.BaseURL = "ftp://x" }, "base_url"},
		{"base with /api", func(c *salesforce.Config) { c.BaseURL += "/api" }, "base_url"},
		{"base with credentials", func(c *salesforce.Config) { c.BaseURL = "https://u:p@x" }, "base_url"},
		{"base with query", func(c *salesforce.Config) { c.BaseURL += "?a=1" }, "base_url"},
		{"no org", func(c *salesforce.Config) { c.OrgID = "" }, "org_id"},
		{"18-char org", func(c *salesforce.Config) { c.OrgID = "00DHs000000Tst1AAA" }, "org_id"},
		{"org with dash", func(c *salesforce.Config) { c.OrgID = "00DHs000000-st1" }, "org_id"},
		{"no auth context", func(c *salesforce.Config) { c.AuthorizationContext = "" }, "authorization_context"},
		{"auth context without prefix", func(c *salesforce.Config) { c.AuthorizationContext = "ChannelDefinition1" }, "authorization_context"},
		{"auth context with space", func(c *salesforce.Config) { c.AuthorizationContext = "P1_Channel Def" }, "authorization_context"},
		{"no client id", func(c *salesforce.Config) { c.ClientID = " " }, "client_id"},
		{"no subject", func(c *salesforce.Config) { c.Subject = "" }, "subject"},
		{"bad audience", func(c *salesforce.Config) { c.Audience = "login.salesforce.com" }, "audience"},
		{"negative timeout", func(c *salesforce.Config) { c.Timeout = -1 }, "timeout"},
		{"long token", func(c *salesforce.Config) { c.TokenLifetime = time.Hour }, "token_lifetime"},
		{"short token", func(c *salesforce.Config) { c.TokenLifetime = time.Second }, "token_lifetime"},
		{"no key", func(c *salesforce.Config) { c.PrivateKey = "" }, "private_key"},
		{"not pem", func(c *salesforce.Config) { c.PrivateKey = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" }, "private_key"},
		{"damaged key", func(c *salesforce.Config) { c.PrivateKey = crmsync.Secret(damaged) }, "private_key"},
		{"certificate", func(c *salesforce.Config) {
			c.PrivateKey = crmsync.Secret(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")}))
		}, "private_key"},
		{"small key", func(c *salesforce.Config) { c.PrivateKey = crmsync.Secret(smallPEM) }, "private_key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig(t)
			tc.mod(&cfg)
			_, err := salesforce.New(cfg)
			var e *crmsync.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, crmsync.EINVALID, e.Code)
			assert.Equal(t, tc.field, e.Field, e.Error())
			assertNoKey(t, err.Error(), pemKey, damaged)
		})
	}
	t.Run("pkcs1 and pkcs8 both work", func(t *testing.T) {
		for _, p := range []string{pkcs1, pemKey} {
			cfg := validConfig(t)
			cfg.PrivateKey = crmsync.Secret(p)
			_, err := salesforce.New(cfg)
			require.NoError(t, err)
		}
	})
}

func TestConfigNeverShowsTheKey(t *testing.T) {
	_, pemKey := sftest.Key(t)
	cfg := validConfig(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	logger.Info("config", "salesforce", cfg)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "salesforce", cfg)
	js, err := json.Marshal(cfg)
	require.NoError(t, err)
	for _, out := range []string{
		fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprint(&cfg),
		logs.String(), string(js),
	} {
		assertNoKey(t, out, pemKey)
		assert.Contains(t, out, "REDACTED")
	}
	assert.Contains(t, logs.String(), sftest.OrgID, "the rest is shown")
}

// assertNoKey fails when out holds any line of a PEM key's body.
func assertNoKey(t *testing.T, out string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		for _, line := range strings.Split(k, "\n") {
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
				require.NotContains(t, out, line)
			}
		}
	}
}
