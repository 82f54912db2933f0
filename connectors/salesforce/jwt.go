package salesforce

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// Claims are the JWT's claims: the JWT bearer flow's iss, sub, aud and
// exp, plus iat.
type Claims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	IssuedAt int64  `json:"iat"`
	Expires  int64  `json:"exp"`
}

// jwtHeader is the same for every token: RS256, as Salesforce requires.
var jwtHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))

// signer signs JWTs and keeps the latest one while enough of its life is
// left, so a burst of calls signs once.
type signer struct {
	key      *rsa.PrivateKey
	claims   Claims // Issuer, Subject, Audience
	lifetime time.Duration
	now      func() time.Time

	mu     sync.Mutex
	token  string
	expiry time.Time
	renew  time.Time // sign again from then on
}

// token returns a JWT valid for at least a third of its lifetime.
func (s *signer) get() (string, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	// A clock that went back (a fake one in tests, an NTP step) makes the
	// cached token's iat lie in the future: sign again.
	if s.token != "" && now.Before(s.renew) && !now.Before(s.expiry.Add(-s.lifetime)) {
		return s.token, nil
	}
	c := s.claims
	c.IssuedAt = now.Unix()
	exp := now.Add(s.lifetime)
	c.Expires = exp.Unix()
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("salesforce: encode jwt claims: %w", err)
	}
	signing := jwtHeader + "." + base64.RawURLEncoding.EncodeToString(payload)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("salesforce: sign jwt: %w", err)
	}
	s.token = signing + "." + base64.RawURLEncoding.EncodeToString(sig)
	s.expiry = time.Unix(c.Expires, 0)
	s.renew = s.expiry.Add(-s.lifetime / 3)
	return s.token, nil
}

// current returns the token in use, "" before the first call: what the
// redactor must hide.
func (s *signer) current() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}
