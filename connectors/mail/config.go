package mail

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/crmsync/crmsync"
)

// Security modes of the connection to the SMTP server.
const (
	// SecuritySTARTTLS connects in plain text and upgrades with STARTTLS
	// before anything else is sent. A server that does not offer STARTTLS is
	// refused: the upgrade is required, not opportunistic.
	SecuritySTARTTLS = "starttls"
	// SecurityTLS speaks TLS from the first byte (implicit TLS, "SMTPS").
	SecurityTLS = "tls"
	// SecurityNone sends everything, the password included, in plain text.
	// Validate allows it only for a server on a loopback address, such as a
	// local relay.
	SecurityNone = "none"
)

// Defaults for SMTP fields left zero.
const (
	DefaultPortSTARTTLS = 587
	DefaultPortTLS      = 465
	DefaultPortNone     = 25
	DefaultTimeout      = 30 * time.Second
)

// SMTP describes the outgoing mail server the outcome emails go through.
type SMTP struct {
	// Host is the server's host name or IP address, without a port.
	// Required.
	Host string `yaml:"host" json:"host"`
	// Port is the server's TCP port. Zero means 587 for starttls, 465 for
	// tls and 25 for none.
	Port int `yaml:"port" json:"port"`
	// Security is starttls, tls or none. Empty means starttls.
	Security string `yaml:"security" json:"security"`
	// Username turns on SMTP authentication (PLAIN or LOGIN, whichever the
	// server offers). Empty means no authentication.
	Username string `yaml:"username" json:"username"`
	// Password goes with Username. It is only ever sent over TLS, or to a
	// loopback server when Security is none.
	Password crmsync.Secret `yaml:"password" json:"password"`
	// From is the sender address, e.g. no-reply@crmsync.example.com, or
	// with a display name, "crmsync <no-reply@crmsync.example.com>".
	// Required.
	From string `yaml:"from" json:"from"`
	// Timeout bounds connecting (with the TLS handshake and
	// authentication) and, separately, the transaction that sends the
	// message. Zero means 30s.
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
	// InsecureSkipVerify accepts any certificate the server presents, which
	// lets anyone on the path read the mail and the password. For tests
	// against a server with a self-signed certificate only. False: the
	// certificate must be valid for Host.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify" json:"insecure_skip_verify"`
}

// Validate checks the configuration and reports the first problem, naming
// the field. It never prints the password.
func (s *SMTP) Validate() error {
	host := s.Host
	switch {
	case host == "":
		return fieldError("host", "is required")
	case hasControl(host) || strings.ContainsAny(host, " /[]@"):
		return fieldError("host", "must be a host name or IP address, without a scheme or port")
	case strings.Contains(host, ":") && net.ParseIP(host) == nil:
		return fieldError("host", "must not hold a port; set port instead")
	}
	if s.Port < 0 || s.Port > 65535 {
		return fieldError("port", "must be between 1 and 65535, or 0 for the default")
	}
	switch s.Security {
	case "", SecuritySTARTTLS, SecurityTLS:
	case SecurityNone:
		if !isLoopback(host) {
			return fieldError("security", "none is only allowed for a loopback host (localhost, 127.0.0.1, ::1); use starttls or tls")
		}
	default:
		return fieldError("security", fmt.Sprintf("must be starttls, tls or none, not %q", s.Security))
	}
	switch {
	case hasControl(s.Username):
		return fieldError("username", "holds a control character")
	case s.Username != "" && s.Password.IsZero():
		return fieldError("password", "is required when username is set")
	case s.Username == "" && !s.Password.IsZero():
		return fieldError("username", "is required when password is set")
	}
	if s.From == "" {
		return fieldError("from", "is required")
	}
	if _, err := parseAddress("smtp from", s.From); err != nil {
		return err
	}
	if s.Timeout < 0 {
		return fieldError("timeout", "must not be negative")
	}
	return nil
}

// LogValue lists the settings with the password redacted, so a logged
// config shows whether one is set and nothing more.
func (s SMTP) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("host", s.Host),
		slog.Int("port", s.port()),
		slog.String("security", s.security()),
		slog.String("username", s.Username),
		slog.String("password", s.Password.String()),
		slog.String("from", s.From),
		slog.Duration("timeout", s.timeout()),
		slog.Bool("insecure_skip_verify", s.InsecureSkipVerify),
	)
}

func (s *SMTP) security() string {
	if s.Security == "" {
		return SecuritySTARTTLS
	}
	return s.Security
}

func (s *SMTP) port() int {
	if s.Port != 0 {
		return s.Port
	}
	switch s.security() {
	case SecurityTLS:
		return DefaultPortTLS
	case SecurityNone:
		return DefaultPortNone
	default:
		return DefaultPortSTARTTLS
	}
}

func (s *SMTP) timeout() time.Duration {
	if s.Timeout == 0 {
		return DefaultTimeout
	}
	return s.Timeout
}

func fieldError(field, reason string) error {
	return errors.New("mail: smtp " + field + ": " + reason)
}

// isLoopback accepts only names that cannot leave the machine without a
// lookup: localhost and loopback IP addresses.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
