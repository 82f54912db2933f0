package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"
)

// TokenStore keeps the CRM's OAuth token in Redis, so a rotated refresh
// token survives a restart and every crmsync process shares one token.
type TokenStore struct {
	rdb redis.UniversalClient
	key string
}

// NewTokenStore stores the token under prefix + "oauth:token".
func NewTokenStore(rdb redis.UniversalClient, prefix string) *TokenStore {
	return &TokenStore{rdb: rdb, key: prefix + "oauth:token"}
}

// Load returns the stored token, or nil when there is none.
func (s *TokenStore) Load(ctx context.Context) (*oauth2.Token, error) {
	b, err := s.rdb.Get(ctx, s.key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("jobs: load oauth token: %w", err)
	}
	var t oauth2.Token
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("jobs: stored oauth token is not JSON")
	}
	return &t, nil
}

// Save stores t.
func (s *TokenStore) Save(ctx context.Context, t *oauth2.Token) error {
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("jobs: oauth token: %w", err)
	}
	if err := s.rdb.Set(ctx, s.key, b, 0).Err(); err != nil {
		return fmt.Errorf("jobs: save oauth token: %w", err)
	}
	return nil
}
