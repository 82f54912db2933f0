package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"

	"github.com/crmsync/crmsync/api"
	"github.com/crmsync/crmsync/configs"
	"github.com/crmsync/crmsync/connectors/crm"
	"github.com/crmsync/crmsync/connectors/crm/samplecrm"
	"github.com/crmsync/crmsync/connectors/mail"
	pegaclient "github.com/crmsync/crmsync/connectors/pega"
	"github.com/crmsync/crmsync/internal/redisconn"
	"github.com/crmsync/crmsync/jobs"
	"github.com/crmsync/crmsync/storage"
	"github.com/crmsync/crmsync/storage/local"
)

func exampleConfig() []byte { return configs.Example }

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (default: the embedded demo config)")
	apiOnly := fs.Bool("api-only", false, "run only the HTTP API")
	workerOnly := fs.Bool("worker-only", false, "run only the job worker")
	listen := fs.String("listen", "", "override server.listen")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *apiOnly && *workerOnly {
		return usageError{"--api-only and --worker-only exclude each other"}
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.Server.Listen = *listen
	}
	m := &Main{Config: cfg, Logger: newLogger(cfg.Log, stderr), API: !*workerOnly, Worker: !*apiOnly}
	if err := m.Run(ctx); err != nil {
		m.Close()
		return err
	}
	<-ctx.Done()
	m.Logger.Info("shutting down")
	return m.Close()
}

func loadConfig(path string) (*configs.Config, error) {
	if path == "" {
		return configs.LoadDemo()
	}
	return configs.Load(path)
}

func newLogger(c configs.Log, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Main is one crmsync process: wiring only.
type Main struct {
	Config *configs.Config
	Logger *slog.Logger
	// API and Worker say which halves run.
	API, Worker bool

	// Addr is the address the API listens on, once Run returned.
	Addr string

	redis   *redisconn.Conn
	client  *asynq.Client
	worker  *jobs.Worker
	storage storage.Target
	routing *routingParts
	api     *api.Server
	http    *http.Server
	done    chan error
}

// Run starts everything and returns once the API listens and the worker runs.
func (m *Main) Run(ctx context.Context) error {
	cfg := m.Config
	if m.Logger == nil {
		m.Logger = slog.New(slog.DiscardHandler)
	}
	var err error
	m.redis, err = redisconn.Open(ctx, redisOptions(cfg.Redis))
	if err != nil {
		return err
	}
	if m.redis.InProcess {
		m.Logger.Warn("NO REDIS CONFIGURED: using an in-process Redis. Queued jobs and session state are lost when this process stops. Set redis.url for anything but a demo.", "addr", m.redis.Addr)
	}
	store := jobs.NewStore(m.redis.Client, cfg.Redis.KeyPrefix)
	client, err := crm.New(&cfg.CRM, crm.Options{Tokens: jobs.NewTokenStore(m.redis.Client, cfg.Redis.KeyPrefix), Logger: m.Logger.With("component", "crm")})
	if err != nil {
		return err
	}

	m.client = asynq.NewClientFromRedisClient(m.redis.Client)
	enq := jobs.NewEnqueuer(m.client, jobs.EnqueuerConfig{Queue: cfg.Worker.Queue, TaskTimeout: cfg.Worker.TaskTimeout})
	spool, err := local.New(local.Config{Path: cfg.Files.Spool})
	if err != nil {
		return fmt.Errorf("files.spool: %w", err)
	}
	intake := &jobs.Intake{Store: store, Spool: spool, Enqueuer: enq, MaxBytes: cfg.Files.MaxBytes}
	store.DisplayCRMURLs = cfg.Storage.URLs == "crm"
	if cfg.Routing.Enabled {
		m.routing, err = buildRouting(ctx, cfg, m.redis.Client, m.Logger)
		if err != nil {
			return err
		}
	}

	if m.Worker {
		p := &jobs.Processor{
			CRM: client, Store: store, Policy: policy(cfg.Retry), Logger: m.Logger.With("component", "jobs"),
			LockTTL: cfg.Worker.LockTTL, Closeouts: enq, CloseoutDelay: cfg.Closeout.Delay,
		}
		if m.routing != nil {
			p.AgentEvents = m.routing.streams
			p.ScreenPops = m.routing.lookups
			feed, err := jobs.NewRoutingFeed(m.routing.engine, enq, m.routing.streams, store, jobs.RoutingFeedConfig{Logger: m.Logger.With("component", "routing-feed")})
			if err != nil {
				return err
			}
			m.routing.runners = append(m.routing.runners, feed.Run)
		}
		target, err := openStorage(ctx, cfg.Storage, m.Logger)
		if err != nil {
			return fmt.Errorf("storage: %w", err)
		}
		m.storage = target
		closer := &jobs.Closer{
			Store: store, Spool: spool, Storage: target, Stored: storedKinds(cfg.Storage),
			CRM: client, AlsoCRM: cfg.Storage.AlsoSendToCRM,
			MailGlobal: cfg.Email.Global, MailQueues: cfg.Email.Queues,
			Policy: policy(cfg.Retry), Logger: m.Logger.With("component", "closeout"),
		}
		if cfg.Email.Used() {
			sender, err := mail.NewSender(cfg.Email.SMTP, m.Logger.With("component", "mail"))
			if err != nil {
				return fmt.Errorf("email: %w", err)
			}
			closer.Mail = sender
		}
		m.worker = jobs.NewWorkerWith(m.redis.Client, p, closer, intake, jobs.WorkerConfig{
			Queue: cfg.Worker.Queue, Concurrency: cfg.Worker.Concurrency,
			ShutdownTimeout: cfg.Server.ShutdownTimeout, Logger: m.Logger,
		})
		if m.routing != nil && cfg.Pega.Enabled {
			client, err := pegaclient.New(pegaClientConfig(cfg.Pega.Service))
			if err != nil {
				return fmt.Errorf("pega.service: %w", err)
			}
			m.worker.HandlePega(&jobs.PegaHandler{
				Pega: client, Routing: m.routing.engine, Store: store, Policy: policy(cfg.Retry),
				Logger: m.Logger.With("component", "pega"),
			})
		}
		if err := m.worker.Start(); err != nil {
			return err
		}
	}

	if m.routing != nil {
		// Every process fires due routing timers; each fires once.
		m.routing.start(m.Logger)
	}
	if !m.API {
		m.Logger.Info("worker running", "queue", cfg.Worker.Queue, "concurrency", cfg.Worker.Concurrency)
		return nil
	}
	srv := &api.Server{
		Events:       enq,
		Sessions:     store,
		Files:        intake,
		Ready:        func(ctx context.Context) error { return m.redis.Client.Ping(ctx).Err() },
		APITokens:    cfg.Server.APITokens,
		AdminTokens:  cfg.Server.AdminTokens,
		MaxBodyBytes: cfg.Server.MaxBodyBytes,
		Queues: asynqmon.New(asynqmon.Options{
			RootPath:     "/admin/queues",
			RedisConnOpt: redisconn.AsynqOpt{C: m.redis.Client},
		}),
		Logger: m.Logger.With("component", "api"),
	}
	if m.routing != nil {
		srv.Registrars = m.routing.registrars
	}
	m.api = srv
	if cfg.CRM.Auth.Type == "oauth2" && cfg.CRM.Auth.OAuth2 != nil && cfg.CRM.Auth.OAuth2.Grant == "authorization_code" {
		srv.OAuth = client
	}
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	m.Addr = ln.Addr().String()
	if cfg.SampleCRM.Enabled {
		srv.Mounts = map[string]http.Handler{
			cfg.SampleCRM.Path: samplecrm.New(samplecrm.Options{
				BaseURL: "http://" + m.Addr + cfg.SampleCRM.Path,
				Logger:  m.Logger.With("component", "sample-crm"),
			}),
		}
		m.Logger.Warn("the built-in sample CRM is on: a demo, not a CRM", "url", "http://"+m.Addr+cfg.SampleCRM.Path+"/")
	}
	m.http = &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	if m.routing != nil {
		// Shutdown does not end open event streams by itself.
		m.http.RegisterOnShutdown(m.routing.streams.Close)
	}
	m.done = make(chan error, 1)
	go func() { m.done <- m.http.Serve(ln) }()
	m.Logger.Info("crmsync listening", "addr", m.Addr, "worker", m.Worker)
	return nil
}

// Close stops taking requests, lets running jobs finish (or hands them
// back to the queue), and closes Redis.
func (m *Main) Close() error {
	var errs []error
	if m.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.Server.ShutdownTimeout)
		if err := m.http.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
		if err := <-m.done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	m.routing.stop()
	if m.worker != nil {
		m.worker.Shutdown()
	}
	if m.storage != nil {
		_ = m.storage.Close()
	}
	if m.client != nil {
		_ = m.client.Close()
	}
	if m.redis != nil {
		if err := m.redis.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func redisOptions(c configs.Redis) redisconn.Options {
	o := redisconn.Options{URL: c.URL}
	if c.Sentinel != nil {
		o.Sentinel = &redisconn.Sentinel{MasterName: c.Sentinel.MasterName, Addrs: c.Sentinel.Addrs, Password: c.Sentinel.Password, DB: c.Sentinel.DB}
	}
	return o
}

func policy(r configs.Retry) jobs.Policy {
	p := jobs.Policy{InitialDelay: r.InitialDelay, Factor: r.Factor, MaxDelay: r.MaxDelay, Window: r.Window, Statuses: map[int]bool{}}
	for _, s := range r.Statuses {
		p.Statuses[s] = true
	}
	return p
}

func pegaClientConfig(s configs.PegaService) pegaclient.Config {
	c := pegaclient.Config{
		BaseURL: s.BaseURL, Timeout: s.Timeout,
		Auth: pegaclient.Auth{Username: s.Username, Password: s.Password, Token: s.Token},
	}
	if o := s.OAuth2; o != nil {
		c.Auth.OAuth2 = &pegaclient.OAuth2{TokenURL: o.TokenURL, ClientID: o.ClientID, ClientSecret: o.ClientSecret, Scopes: o.Scopes}
	}
	return c
}
