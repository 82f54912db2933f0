package crmsync

import (
	"encoding/json"
	"log/slog"
)

// Secret is a configuration value that must never be printed: passwords,
// tokens, client secrets, private keys. Every way Go formats or encodes a
// value is covered, so a config struct can be logged or dumped whole.
type Secret string

const redacted = "[REDACTED]"

// Reveal returns the secret itself, for the one place that must send it.
func (s Secret) Reveal() string { return string(s) }

// IsZero reports whether no secret was configured.
func (s Secret) IsZero() bool { return s == "" }

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return `crmsync.Secret("` + s.String() + `")` }

// LogValue keeps slog from printing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON keeps JSON dumps (the session view, check commands) redacted.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText covers YAML and other text encoders.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
