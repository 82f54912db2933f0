// Package scriptstore holds what crmsync's Lua-script stores in Redis (the
// routing engine, pull mode, Salesforce routings) share: the hash-tag rule
// their key prefixes follow, how their script replies are read, and which
// Redis failures are an outage to try again after rather than a fault.
package scriptstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/crmsync/crmsync"
)

// HashTag returns what Redis Cluster hashes of key: the text between the
// first '{' and the next '}', when not empty. A store whose keys all share
// one tag may touch any of them in one script on a Cluster.
func HashTag(key string) (string, bool) {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return "", false
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return "", false
	}
	return key[i+1 : i+1+j], true
}

// Unavailable wraps the error of a failed round trip for operation op of
// store pkg: a Redis that cannot be reached, or is loading, busy or failing
// over, is EUNAVAILABLE (try again); an error the server answered is a
// fault of ours; a cancelled context stays what it is.
func Unavailable(pkg, op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %s: %w", pkg, op, err)
	}
	var reply redis.Error
	if errors.As(err, &reply) && !IsBusy(err) {
		return fmt.Errorf("%s: %s: %w", pkg, op, err)
	}
	return fmt.Errorf("%s: %s: %w", pkg, op, crmsync.Errorf(crmsync.EUNAVAILABLE, "", "routing store: %v", err))
}

// IsBusy reports the server errors that pass: loading, busy with a
// script, a failover under way.
func IsBusy(err error) bool {
	m := err.Error()
	for _, p := range []string{"LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "READONLY", "CLUSTERDOWN"} {
		if strings.HasPrefix(m, p) {
			return true
		}
	}
	return false
}

// Str reads a script reply value as a string ("" for nil).
func Str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// Num reads a script reply value as an integer (0 when it is none).
func Num(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}
