package pull

import (
	"context"
	_ "embed"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/scriptstore"
	"github.com/crmsync/crmsync/routing"
)

//go:embed pull.lua
var pullLua string

var pullScript = redis.NewScript(pullLua)

// Store is pull mode over one Redis. It holds no state of its own: any
// number of Stores, in any number of processes, may share a Redis and a
// prefix. Its methods are safe for concurrent use.
type Store struct {
	rdb  redis.UniversalClient
	cfg  Config
	keys []string
}

// New returns a Store over rdb. It fails only on a bad Config.
func New(rdb redis.UniversalClient, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	// The one declared key routes the script to the prefix's slot on a
	// cluster; the script builds the others from the prefix.
	return &Store{rdb: rdb, cfg: cfg, keys: []string{cfg.Prefix + "lists"}}, nil
}

// Config returns the configuration in effect, defaults filled in.
func (s *Store) Config() Config { return s.cfg }

// run calls the script for op and returns the values after "ok". It is
// the only way state changes.
func (s *Store) run(ctx context.Context, op string, args ...any) ([]any, error) {
	argv := make([]any, 0, 7+len(args))
	argv = append(argv, op, s.cfg.Prefix, s.cfg.StreamPrefix, s.cfg.StreamMaxLen, s.cfg.LogMaxLen,
		s.cfg.Now().UnixMilli(), s.cfg.ClosedTTL.Milliseconds())
	argv = append(argv, args...)
	v, err := pullScript.Run(ctx, s.rdb, s.keys, argv...).Slice()
	if err != nil {
		return nil, unavailable(op, err)
	}
	if len(v) == 0 {
		return nil, fmt.Errorf("pull: %s: empty answer from the script", op)
	}
	switch v[0] {
	case "ok":
		return v[1:], nil
	case "err":
		if len(v) < 4 {
			return nil, fmt.Errorf("pull: %s: malformed error from the script", op)
		}
		code, field, msg := str(v[1]), str(v[2]), str(v[3])
		switch code {
		case codeStale:
			return nil, fmt.Errorf("pull: %s: %s %s: %w", op, field, msg, ErrSnapshotNeeded)
		case crmsync.EINVALID, crmsync.ENOTFOUND, crmsync.ECONFLICT:
			return nil, crmsync.Errorf(code, field, "%s", msg)
		}
		return nil, fmt.Errorf("pull: %s: %s", op, msg)
	}
	return nil, fmt.Errorf("pull: %s: malformed answer from the script", op)
}

// codeStale is the script's word for a seq its change log no longer
// reaches.
const codeStale = "stale"

// Limits on what a caller may store.
const (
	maxNameLen      = 256
	maxChannels     = 64
	maxAttributes   = 64
	maxAttrKeyLen   = 128
	maxAttrValueLen = 4096
	maxListsAtOnce  = 256
)

// checkID wraps routing.ValidateID into the error the API returns.
func checkID(field, id string) error {
	if err := routing.ValidateID(id); err != nil {
		return crmsync.Errorf(crmsync.EINVALID, field, "%v", err)
	}
	return nil
}

// checkText accepts valid UTF-8 without control characters, up to max
// bytes.
func checkText(field, s string, max int) error {
	if len(s) > max {
		return crmsync.Errorf(crmsync.EINVALID, field, "is %d bytes long, more than %d", len(s), max)
	}
	if !utf8.ValidString(s) {
		return crmsync.Errorf(crmsync.EINVALID, field, "is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return crmsync.Errorf(crmsync.EINVALID, field, "holds the control character %q", r)
		}
	}
	return nil
}

// The script stores share these (internal/scriptstore).
var (
	str = scriptstore.Str
	num = scriptstore.Num
)

func unavailable(op string, err error) error { return scriptstore.Unavailable("pull", op, err) }
