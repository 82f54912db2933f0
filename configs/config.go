// Package configs defines crmsync's configuration file: its types, how it
// is loaded (YAML, ${ENV} expansion, unknown fields refused), how it is
// checked (every error names the YAML path and line), and the example and
// demo files that ship inside the binary.
package configs

import (
	"time"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/crm"
)

// Config is the whole file.
type Config struct {
	Server     Server     `yaml:"server"`
	Redis      Redis      `yaml:"redis"`
	Log        Log        `yaml:"log"`
	Worker     Worker     `yaml:"worker"`
	Retry      Retry      `yaml:"retry"`
	CRM        crm.Config `yaml:"crm"`
	SampleCRM  SampleCRM  `yaml:"sample_crm"`
	Storage    Storage    `yaml:"storage"`
	Files      Files      `yaml:"files"`
	Closeout   Closeout   `yaml:"closeout"`
	Email      Email      `yaml:"email"`
	Routing    Routing    `yaml:"routing"`
	Pega       Pega       `yaml:"pega"`
	Salesforce Salesforce `yaml:"salesforce"`
}

// Server is the HTTP API.
type Server struct {
	// Listen is host:port. Empty means 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// APITokens are the bearer tokens accepted on /v1. At least one is required.
	APITokens []crmsync.Secret `yaml:"api_tokens"`
	// AdminTokens are accepted on /admin. Empty means the API tokens.
	AdminTokens []crmsync.Secret `yaml:"admin_tokens"`
	// MaxBodyBytes caps a request body. Zero means 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ShutdownTimeout is how long a stopping server waits for requests and
	// running jobs. Zero means 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// Redis says where all durable state lives. With neither URL nor Sentinel,
// crmsync runs an in-process Redis that keeps nothing across a restart.
type Redis struct {
	// URL is redis://[:password@]host:port[/db] or rediss:// for TLS. It may
	// hold a password, so it is treated as a secret.
	URL crmsync.Secret `yaml:"url"`
	// Sentinel, when set, finds the master through Redis Sentinel.
	Sentinel *Sentinel `yaml:"sentinel"`
	// KeyPrefix starts every key crmsync writes (asynq's own keys aside).
	// Empty means "crmsync:".
	KeyPrefix string `yaml:"key_prefix"`
}

// Sentinel locates a Redis master.
type Sentinel struct {
	MasterName string         `yaml:"master_name"`
	Addrs      []string       `yaml:"addrs"`
	Password   crmsync.Secret `yaml:"password"`
	DB         int            `yaml:"db"`
}

// Log configures log/slog.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is text (default) or json.
	Format string `yaml:"format"`
}

// Worker runs the jobs.
type Worker struct {
	// Concurrency is how many jobs run at once. Zero means 50: jobs mostly
	// wait on the CRM, not on the CPU.
	Concurrency int `yaml:"concurrency"`
	// Queue is the asynq queue name. Empty means "crmsync".
	Queue string `yaml:"queue"`
	// TaskTimeout bounds one job run. Zero means 2m.
	TaskTimeout time.Duration `yaml:"task_timeout"`
	// LockTTL is how long a session stays locked by a job that died without
	// unlocking it. Zero means TaskTimeout plus 30s.
	LockTTL time.Duration `yaml:"lock_ttl"`
}

// Retry is the one retry policy: retryable failures are retried with a
// growing delay (an exponential ramp down in frequency) until Window after
// the first attempt; anything else is archived at once.
type Retry struct {
	// InitialDelay is the first delay. Zero means 30s.
	InitialDelay time.Duration `yaml:"initial_delay"`
	// Factor multiplies the delay after each retry. Zero means 2.
	Factor float64 `yaml:"factor"`
	// MaxDelay caps one delay. Zero means 12h.
	MaxDelay time.Duration `yaml:"max_delay"`
	// Window is how long after the first attempt retries go on. Zero means 168h (a week).
	Window time.Duration `yaml:"window"`
	// Statuses are the CRM HTTP statuses that are retried. Empty means
	// 400, 429, 502, 503 and 504. Transport errors and timeouts always are.
	Statuses []int `yaml:"statuses"`
}

// SampleCRM turns on the built-in demo CRM, served by this process under
// Path. It is a demo and off unless configured.
type SampleCRM struct {
	Enabled bool `yaml:"enabled"`
	// Path is where it is mounted. Empty means /sample-crm.
	Path string `yaml:"path"`
}
