package jobs

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// WorkerConfig configures the asynq server that runs the jobs.
type WorkerConfig struct {
	// Queue is the queue to work. Empty means "crmsync".
	Queue string
	// Concurrency is how many jobs run at once. Zero means 50.
	Concurrency int
	// ShutdownTimeout is how long a stopping worker lets running jobs
	// finish before handing them back to the queue. Zero means 30s.
	ShutdownTimeout time.Duration
	// PollInterval is how often retries and scheduled tasks are moved to
	// the queue. Zero means 1s.
	PollInterval time.Duration
	Logger       *slog.Logger
}

// Worker runs event tasks until shut down.
type Worker struct {
	srv *asynq.Server
	mux *asynq.ServeMux
}

// NewWorker builds a worker on the shared Redis client.
func NewWorker(rdb redis.UniversalClient, p *Processor, cfg WorkerConfig) *Worker {
	return NewWorkerWith(rdb, p, nil, nil, cfg)
}

// NewWorkerWith also runs close-outs when c is set and file fetches when
// in is set.
func NewWorkerWith(rdb redis.UniversalClient, p *Processor, c *Closer, in *Intake, cfg WorkerConfig) *Worker {
	if cfg.Queue == "" {
		cfg.Queue = "crmsync"
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 50
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   map[string]int{cfg.Queue: 1},
		RetryDelayFunc:           p.RetryDelay,
		IsFailure:                IsFailure,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		DelayedTaskCheckInterval: cfg.PollInterval,
		Logger:                   asynqLogger{log.With("component", "asynq")},
		LogLevel:                 asynq.WarnLevel,
	})
	mux := asynq.NewServeMux()
	for _, typ := range []string{TypeStart, TypeTransfer, TypeRating, TypeEnd, TypeRecord} {
		mux.Handle(typ, p)
	}
	if c != nil {
		mux.Handle(TypeCloseout, c)
	}
	if in != nil {
		mux.Handle(TypeFetch, in)
	}
	return &Worker{srv: srv, mux: mux}
}

// HandlePega makes the worker run pega:assign tasks with h. Call it
// before Start.
func (w *Worker) HandlePega(h *PegaHandler) { w.mux.Handle(TypePegaAssign, h) }

// Start starts processing in the background.
func (w *Worker) Start() error {
	if err := w.srv.Start(w.mux); err != nil {
		return fmt.Errorf("jobs: start worker: %w", err)
	}
	return nil
}

// Shutdown stops taking tasks, waits up to the shutdown timeout for
// running ones, and hands back the rest: nothing is lost.
func (w *Worker) Shutdown() { w.srv.Shutdown() }

// asynqLogger sends asynq's own logs to slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
