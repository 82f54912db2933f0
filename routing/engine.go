package routing

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/scriptstore"
)

//go:embed engine.lua
var engineLua string

// The engine runs as a Redis Function where the server has them (Redis 7
// and later): the library's top level, which defines a hundred functions,
// then runs once per load instead of once per call, about a third of a
// small decision's cost. Elsewhere (older servers, a Redis Cluster, the
// tests' in-process Redis) the same code runs through EVAL.
var (
	engineScript = redis.NewScript(engineLua + "\nreturn main(ARGV)\n")
	// engineFunc is named after the script's content, so processes of two
	// versions on one Redis each call their own.
	engineFunc    = "crmsync_routing_" + engineScript.Hash()[:12]
	engineLibrary = "#!lua name=" + engineFunc + "\n" + engineLua +
		"\nredis.register_function('" + engineFunc + "', function(keys, args) return main(args) end)\n"
)

// Modes of calling the engine (Engine.mode).
const (
	modeUnknown  int32 = iota // try a Function first
	modeFunction              // FCALL works
	modeEval                  // the server has no Functions: EVAL only
)

// Engine is the push-mode routing engine over one Redis. It holds no
// state of its own: any number of Engines (in any number of processes)
// may share a Redis and a prefix. Its methods are safe for concurrent use.
type Engine struct {
	rdb   redis.UniversalClient
	cfg   Config
	keys  []string
	fixed []any // ARGV[2..12], the same for every call
	mode  atomic.Int32
}

// New returns an Engine over rdb. It fails only on a bad Config.
func New(rdb redis.UniversalClient, cfg Config) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Engine{rdb: rdb, cfg: cfg, keys: []string{cfg.Prefix + "timers"}}
	if _, cluster := rdb.(*redis.ClusterClient); cluster {
		// A Function would have to be loaded on every master; EVAL
		// carries the script to whichever node has the slot.
		e.mode.Store(modeEval)
	}
	e.fixed = []any{
		cfg.Prefix,
		cfg.StreamPrefix,
		cfg.StreamMaxLen,
		cfg.OutboxMaxLen,
		int64(0), // now, set per call
		cfg.OfferTimeout.Milliseconds(),
		max(cfg.DeclineCooldown.Milliseconds(), 0),
		max(cfg.ExpiredInRow, 0),
		string(cfg.LogOff),
		int64(cfg.EndedTTL / time.Second),
		max(cfg.HeartbeatGrace.Milliseconds(), 0),
	}
	return e, nil
}

// Config returns the configuration in effect, defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// OutboxKey is the outbox stream's key.
func (e *Engine) OutboxKey() string { return e.cfg.Prefix + "outbox" }

func (e *Engine) now() int64 { return e.cfg.Now().UnixMilli() }

// result is a script's answer: the operation's values, then the offers
// the call made (conversation, agent pairs).
type result struct {
	values []any
	offers [][2]string
}

// argv is the script's ARGV for op.
func (e *Engine) argv(op string, args ...any) []any {
	argv := make([]any, 0, 1+len(e.fixed)+len(args))
	argv = append(argv, op)
	argv = append(argv, e.fixed...)
	argv[5] = e.now()
	return append(argv, args...)
}

// run calls the script for op. It is the only way state changes.
func (e *Engine) run(ctx context.Context, op string, args ...any) (result, error) {
	v, err := e.call(ctx, e.argv(op, args...))
	if err != nil {
		return result{}, unavailable(op, err)
	}
	return parseResult(op, v)
}

// call runs the engine with argv, as a Function when the server has them.
func (e *Engine) call(ctx context.Context, argv []any) ([]any, error) {
	if e.mode.Load() != modeEval {
		v, err := e.rdb.FCall(ctx, engineFunc, e.keys, argv...).Slice()
		if err == nil {
			e.mode.CompareAndSwap(modeUnknown, modeFunction)
			return v, nil
		}
		if !isRedisError(err) {
			return v, err
		}
		msg := err.Error()
		switch {
		case strings.Contains(msg, "Function not found"):
			// Not loaded yet, or the server was replaced: load it, once
			// for all processes (REPLACE makes a race harmless), and call
			// again.
			if lerr := e.rdb.FunctionLoadReplace(ctx, engineLibrary).Err(); lerr != nil {
				if !isUnknownCommand(lerr) {
					return nil, fmt.Errorf("loading the routing function: %w", lerr)
				}
				e.mode.Store(modeEval)
				break
			}
			e.mode.Store(modeFunction)
			return e.rdb.FCall(ctx, engineFunc, e.keys, argv...).Slice()
		case isUnknownCommand(err):
			e.mode.Store(modeEval)
		default:
			return v, err
		}
	}
	return engineScript.Run(ctx, e.rdb, e.keys, argv...).Slice()
}

func isRedisError(err error) bool {
	var reply redis.Error
	return errors.As(err, &reply)
}

// isUnknownCommand reports a server without Functions.
func isUnknownCommand(err error) bool {
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "unknown command") || strings.Contains(m, "unknown subcommand")
}

func parseResult(op string, v []any) (result, error) {
	if len(v) == 0 {
		return result{}, fmt.Errorf("routing: %s: empty answer from the script", op)
	}
	if v[0] == "err" {
		if len(v) < 4 {
			return result{}, fmt.Errorf("routing: %s: malformed error from the script", op)
		}
		code, field, msg := str(v[1]), str(v[2]), str(v[3])
		if code == "internal" {
			return result{}, fmt.Errorf("routing: %s: %s", op, msg)
		}
		return result{}, crmsync.Errorf(code, field, "%s", msg)
	}
	if v[0] != "ok" || len(v) < 2 {
		return result{}, fmt.Errorf("routing: %s: malformed answer from the script", op)
	}
	n := int(num(v[1]))
	if n < 0 || 2+n > len(v) {
		return result{}, fmt.Errorf("routing: %s: malformed answer from the script", op)
	}
	r := result{values: v[2 : 2+n]}
	rest := v[2+n:]
	for i := 0; i+1 < len(rest); i += 2 {
		r.offers = append(r.offers, [2]string{str(rest[i]), str(rest[i+1])})
	}
	return r, nil
}

// Tick fires every timer that is due now: offer expiries, preferred-agent
// waits, queue maximum waits, cooldown ends, heartbeat deadlines. It
// returns how many fired. Run calls it; tests on a fake clock call it
// directly.
func (e *Engine) Tick(ctx context.Context) (int, error) {
	total := 0
	for {
		r, err := e.run(ctx, "tick", e.cfg.TickBatch)
		if err != nil {
			return total, err
		}
		n := int(num(r.values[0]))
		total += n
		if n < e.cfg.TickBatch {
			return total, nil
		}
	}
}

// Run fires due timers every Config.TickInterval until ctx ends, then
// returns nil. Every Engine on a Redis may run it; each timer fires once,
// in whichever Engine sees it first. Failures are logged and retried on
// the next tick.
func (e *Engine) Run(ctx context.Context) error {
	t := time.NewTicker(e.cfg.TickInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := e.Tick(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// Log the first failure of a run of them, not one per tick.
			if !failing {
				e.cfg.Logger.Error("routing: firing timers", "err", err)
			}
			failing = true
			continue
		}
		if failing {
			e.cfg.Logger.Info("routing: firing timers again")
			failing = false
		}
	}
}

// The script stores share these (internal/scriptstore).
var (
	str = scriptstore.Str
	num = scriptstore.Num
)

func unavailable(op string, err error) error { return scriptstore.Unavailable("routing", op, err) }
