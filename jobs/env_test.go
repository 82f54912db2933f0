package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/configs"
	"github.com/crmsync/crmsync/connectors/crm"
	"github.com/crmsync/crmsync/connectors/crm/samplecrm"
	"github.com/crmsync/crmsync/internal/logtest"
	"github.com/crmsync/crmsync/internal/redistest"
)

// env is one worker against real Redis and the sample CRM over real HTTP,
// configured by the demo config.
type env struct {
	t         testing.TB
	rdb       redis.UniversalClient
	prefix    string
	queue     string
	crm       *samplecrm.Server
	crmURL    string
	cfg       *configs.Config
	client    *crm.Client
	store     *Store
	proc      *Processor
	enq       *Enqueuer
	worker    *Worker
	inspector *asynq.Inspector
	logs      *logtest.Buffer
	logger    *slog.Logger
	// pega, when set by envOpts.setup, runs pega:assign tasks.
	pega *PegaHandler
}

type envOpts struct {
	crm      samplecrm.Options
	policy   *Policy
	auth     func(*crm.Auth)
	noWorker bool
	// quiet logs at info, as production does; the default is debug, so
	// the secrets tests see everything that could be logged.
	quiet bool
	// setup runs before the worker starts, to wire more into it.
	setup func(e *env)
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	e := &env{t: t, rdb: redistest.Client(t), logs: &logtest.Buffer{}}
	e.queue = redistest.Queue(t, e.rdb)
	e.prefix = redistest.Prefix(t, e.rdb)
	e.crm = samplecrm.New(o.crm)
	mux := http.NewServeMux()
	mux.Handle("/sample-crm/", http.StripPrefix("/sample-crm", e.crm))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e.crmURL = srv.URL + "/sample-crm"

	cfg, err := configs.Parse("demo.yaml", configs.Demo, func(k string) (string, bool) {
		if k == "CRMSYNC_LISTEN" {
			return strings.TrimPrefix(srv.URL, "http://"), true
		}
		return "", false
	})
	require.NoError(t, err)
	if o.auth != nil {
		o.auth(&cfg.CRM.Auth)
		require.NoError(t, cfg.CRM.Compile())
	}
	e.cfg = cfg
	level := slog.LevelDebug
	if o.quiet {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: level}))
	e.client, err = crm.New(&cfg.CRM, crm.Options{Logger: logger, Tokens: NewTokenStore(e.rdb, e.prefix)})
	require.NoError(t, err)
	e.store = NewStore(e.rdb, e.prefix)
	pol := DefaultPolicy()
	if o.policy != nil {
		pol = *o.policy
	}
	e.proc = &Processor{CRM: e.client, Store: e.store, Policy: pol, Logger: logger, LockTTL: 20 * time.Second}
	ac := asynq.NewClientFromRedisClient(e.rdb)
	e.enq = NewEnqueuer(ac, EnqueuerConfig{Queue: e.queue, TaskTimeout: 30 * time.Second})
	e.inspector = asynq.NewInspectorFromRedisClient(e.rdb)
	e.logger = logger
	if o.setup != nil {
		o.setup(e)
	}
	if !o.noWorker {
		e.worker = NewWorker(e.rdb, e.proc, WorkerConfig{Queue: e.queue, Concurrency: 20, PollInterval: 50 * time.Millisecond, ShutdownTimeout: 5 * time.Second, Logger: logger})
		if e.pega != nil {
			e.worker.HandlePega(e.pega)
		}
		require.NoError(t, e.worker.Start())
	}
	t.Cleanup(func() {
		if e.worker != nil {
			e.worker.Shutdown()
		}
	})
	return e
}

// post decodes and enqueues events as the API would.
func (e *env) post(bodies ...string) []Accepted {
	e.t.Helper()
	var out []Accepted
	for _, b := range bodies {
		evs, err := crmsync.DecodeEvents([]byte(b))
		require.NoError(e.t, err, b)
		acc, err := e.enq.Enqueue(context.Background(), evs)
		require.NoError(e.t, err)
		out = append(out, acc...)
	}
	return out
}

// drain waits until the queue has nothing left to run.
func (e *env) drain(timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		info, err := e.inspector.GetQueueInfo(e.queue)
		if err == nil && info.Pending+info.Active+info.Scheduled+info.Retry == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("queue not drained after %s: %+v (err %v)", timeout, info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) view(key string) *View {
	e.t.Helper()
	k, err := crmsync.ParseSessionKey(key)
	require.NoError(e.t, err)
	v, err := e.store.View(context.Background(), k)
	require.NoError(e.t, err)
	return v
}

func newCall(id int, phone string) string {
	return fmt.Sprintf(`{"type":"New_Call","data":{"call_id":%d,"agent_id":1,"agent_email":"james.bond@agents.co","queue_id":8469,"queue_path":"Developers / James","session_type":"Voice Inbound","end_user_name":"Caller %d","end_user_phone":%q,"end_user_email":"caller%d@example.com"}}`, id, id, phone, id)
}

func endCall(id int) string {
	return fmt.Sprintf(`{"type":"End_Call","data":{"call_id":%d,"agent_id":1,"agent_email":"james.bond@agents.co","call_duration":303,"hold_time":20,"wait_time":41,"disconnected_by":"end_user"}}`, id)
}

func phone(i int) string { return fmt.Sprintf("+1 415 %03d %04d", 200+i/10000, i%10000) }
