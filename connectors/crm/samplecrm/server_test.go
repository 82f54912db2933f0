package samplecrm

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestOptionsLogValueRedactsSecrets(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("start", "opts", Options{
		BasicUser: "u", BasicPassword: "basic-secret",
		HeaderName: "X-Api-Key", HeaderValue: "header-secret",
		OAuth: &OAuthOptions{ClientID: "id", ClientSecret: "oauth-secret"},
	})
	out := buf.String()
	for _, secret := range []string{"basic-secret", "header-secret", "oauth-secret"} {
		assert.NotContains(t, out, secret)
	}
	assert.Contains(t, out, "opts.basic_user=u")
	assert.Contains(t, out, "opts.oauth.client_id=id")
	assert.Contains(t, out, "REDACTED")
}
