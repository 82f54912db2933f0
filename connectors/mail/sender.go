package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"strconv"
	"strings"

	gomail "github.com/wneessen/go-mail"
)

// Sender delivers outcome emails through one SMTP server. It opens a
// connection per message, so it holds no connection between sends and is
// safe for concurrent use.
type Sender struct {
	cfg  SMTP
	from *netmail.Address
	addr string // host:port
	tls  *tls.Config
	log  *slog.Logger
}

// NewSender checks cfg and returns a Sender for it. A nil logger discards.
func NewSender(cfg SMTP, logger *slog.Logger) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	from, err := parseAddress("smtp from", cfg.From)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Sender{
		cfg:  cfg,
		from: from,
		addr: net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.port())),
		tls: &tls.Config{
			ServerName:         cfg.Host,
			MinVersion:         tls.VersionTLS12,
			InsecureSkipVerify: cfg.InsecureSkipVerify, // documented as tests only
		},
		log: logger,
	}, nil
}

// Send checks o, then connects, secures the connection as configured,
// authenticates and delivers the message. Every field of o is checked
// before the server is contacted; a value that would break out of its
// header fails with ErrHeaderInjection. Cancelling ctx aborts the
// conversation at any point, not only while connecting.
//
// A nil error means the server accepted the message. When the message was
// accepted but closing the session failed, Send logs that and returns nil:
// a retry would only deliver a duplicate. On error, Retryable tells whether
// trying again later can help; a retry that duplicates a message the server
// did take carries the same Message-ID. Errors never hold the password.
func (s *Sender) Send(ctx context.Context, o Outcome) error {
	if s == nil || s.from == nil {
		return errors.New("mail: Sender not made by NewSender")
	}
	msg, err := o.message(s.from)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mail: send %s: %w", o.MessageID, err)
	}

	// The dial function is ours so that ctx can close the connection at any
	// point and so that the connection is closed on every path; go-mail
	// leaves it open when STARTTLS or authentication fails. It dials s.addr,
	// not the address go-mail passes, which lacks brackets around IPv6.
	var (
		conn net.Conn
		stop func() bool
	)
	defer func() {
		if stop != nil {
			stop()
		}
		if conn != nil {
			_ = conn.Close()
		}
	}()
	dial := func(dialCtx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(dialCtx, "tcp", s.addr)
		if err != nil {
			return nil, err
		}
		conn = c
		stop = context.AfterFunc(ctx, func() { _ = c.Close() })
		if s.cfg.security() != SecurityTLS {
			return c, nil
		}
		// Handing go-mail the *tls.Conn itself lets its SMTP client see
		// that the connection is encrypted, which PLAIN and LOGIN require.
		tc := tls.Client(c, s.tls)
		if err := tc.HandshakeContext(dialCtx); err != nil {
			return nil, err
		}
		return tc, nil
	}

	client, err := gomail.NewClient(s.cfg.Host, s.options(dial)...)
	if err != nil {
		return s.fail(ctx, o.MessageID, "smtp client", err)
	}
	smtpClient, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return s.fail(ctx, o.MessageID, "connect to "+s.addr, err)
	}
	sendErr := client.SendWithSMTPClient(smtpClient, msg)
	if sendErr != nil && !msg.IsDelivered() {
		_ = client.CloseWithSMTPClient(smtpClient)
		return s.fail(ctx, o.MessageID, "deliver", sendErr)
	}
	closeErr := client.CloseWithSMTPClient(smtpClient)
	if err := errors.Join(sendErr, closeErr); err != nil {
		s.log.Warn("mail: message accepted, closing the session failed",
			"message_id", o.MessageID, "err", s.redact(err).Error())
	}
	s.log.Info("mail: outcome email sent",
		"message_id", o.MessageID, "to", o.To, "server_response", msg.ServerResponse())
	return nil
}

func (s *Sender) options(dial gomail.DialContextFunc) []gomail.Option {
	opts := []gomail.Option{
		gomail.WithPort(s.cfg.port()),
		gomail.WithTimeout(s.cfg.timeout()),
		gomail.WithDialContextFunc(dial),
		gomail.WithTLSConfig(s.tls),
		// The session ends right after the one message; RSET would only
		// be one more reply that could fail after the server took it.
		gomail.WithoutRset(),
	}
	if s.cfg.security() == SecuritySTARTTLS {
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	} else {
		// tls: the dial function already did the handshake.
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if s.cfg.Username != "" {
		opts = append(opts,
			gomail.WithUsername(s.cfg.Username),
			gomail.WithPassword(s.cfg.Password.Reveal()),
			gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthPlain, gomail.SMTPAuthLogin),
		)
	}
	return opts
}

// fail wraps err with the step that failed, puts ctx's error first when
// ctx ended the attempt, and keeps the password out of the text.
func (s *Sender) fail(ctx context.Context, id, step string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w (%w)", ctxErr, err)
	}
	return s.redact(fmt.Errorf("mail: send %s: %s: %w", id, step, err))
}

// redact guards against a server that echoes what it was sent in its
// reply. The wrapped error stays reachable for errors.Is and errors.As.
func (s *Sender) redact(err error) error {
	pw := s.cfg.Password.Reveal()
	if pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return &redactedError{err: err, secret: pw}
}

type redactedError struct {
	err    error
	secret string
}

func (e *redactedError) Error() string {
	return strings.ReplaceAll(e.err.Error(), e.secret, "[REDACTED]")
}

func (e *redactedError) Unwrap() error { return e.err }
