package sftest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"sync"
	"testing"
	"time"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/salesforce"
)

// Values ClientConfig and Start use.
const (
	OrgID                = "00DHs000000Tst1"
	AuthorizationContext = "Crmsync_ChannelDefinition1"
	ClientID             = "3MVG9sftestConsumerKey.crmsync"
	Subject              = "integration@crmsync.example.com"
)

var (
	keyOnce sync.Once
	key     *rsa.PrivateKey
	keyPEM  string
)

// Key returns an RSA key and its PKCS #8 PEM. It is made once per test
// binary, since making one takes a while.
func Key(tb testing.TB) (*rsa.PrivateKey, string) {
	tb.Helper()
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return
		}
		key, keyPEM = k, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	})
	if key == nil {
		tb.Fatal("sftest: could not make an RSA key")
	}
	return key, keyPEM
}

// Start starts a server that expects the constants above and Key's key,
// on the given clock (nil: time.Now).
func Start(tb testing.TB, now func() time.Time) *Server {
	tb.Helper()
	k, _ := Key(tb)
	return New(tb, Config{
		PublicKey: &k.PublicKey, OrgID: OrgID, AuthorizationContext: AuthorizationContext,
		ClientID: ClientID, Subject: Subject, Now: now,
	})
}

// ClientConfig is a client configuration that this server accepts, when
// it was started by Start: Key's key, the constants above, its URL, and
// the given clock.
func (s *Server) ClientConfig(tb testing.TB, now func() time.Time) salesforce.Config {
	tb.Helper()
	_, pemKey := Key(tb)
	return salesforce.Config{
		BaseURL: s.URL(), OrgID: s.cfg.OrgID, AuthorizationContext: s.cfg.AuthorizationContext,
		ClientID: s.cfg.ClientID, Subject: s.cfg.Subject, Audience: s.cfg.Audience,
		PrivateKey: crmsync.Secret(pemKey), Timeout: 5 * time.Second, Now: now,
	}
}
