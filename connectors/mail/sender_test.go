package mail

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	netmail "net/mail"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/internal/logtest"
)

const testPassword = "correct-horse-battery-9"

func testOutcome() Outcome {
	return Outcome{
		MessageID: "<call-103646.outcome@crmsync>",
		To:        "crm-inbox@crm.example",
		Subject:   Subject("call-103646", "Voice Inbound", "Développeurs / James"),
		Metadata:  []byte(`{"id":103646,"type":"voice_inbound","queue":{"path":"Développeurs / James"},"agent":{"name":"Ana"},"duration":312}`),
	}
}

func newSender(t testing.TB, cfg SMTP) (*Sender, *logtest.Buffer) {
	t.Helper()
	logs := &logtest.Buffer{}
	s, err := NewSender(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(t, err)
	return s, logs
}

func TestSendContent(t *testing.T) {
	srv := startServer(t, serverOptions{security: SecuritySTARTTLS, username: "crmsync", password: testPassword})
	s, _ := newSender(t, srv.config())
	o := testOutcome()
	// Mixed line endings and non-ASCII: the attachment must arrive byte for byte.
	transcript := []byte("10:00:01 Ana: Hello, how can I help?\r\n10:00:09 Consumer: Où est ma commande #4411 ?\n")
	o.Transcript = transcript
	o.TranscriptName = "chat-103646.txt"

	require.NoError(t, s.Send(t.Context(), o))

	msgs := srv.Messages()
	require.Len(t, msgs, 1)
	got := msgs[0]
	assert.Equal(t, "no-reply@crmsync.example", got.From)
	assert.Equal(t, []string{"crm-inbox@crm.example"}, got.To)
	assert.True(t, got.TLS, "the message went over the STARTTLS-upgraded connection")
	assert.Equal(t, "crmsync", got.User)

	p := parseMessage(t, got.Data)
	assert.Equal(t, "Session outcome: call-103646 (Voice Inbound, Développeurs / James)", p.Subject)
	assert.Equal(t, "<call-103646.outcome@crmsync>", p.Header.Get("Message-ID"))
	assert.Equal(t, "auto-generated", p.Header.Get("Auto-Submitted"))
	from, err := netmail.ParseAddress(p.Header.Get("From"))
	require.NoError(t, err)
	assert.Equal(t, &netmail.Address{Name: "crmsync", Address: "no-reply@crmsync.example"}, from)
	to, err := netmail.ParseAddress(p.Header.Get("To"))
	require.NoError(t, err)
	assert.Equal(t, "crm-inbox@crm.example", to.Address)
	_, err = p.Header.Date()
	assert.NoError(t, err)

	assert.Equal(t, "text/plain", p.BodyType)
	assert.Equal(t, "utf-8", strings.ToLower(p.BodyCharset))
	assert.JSONEq(t, string(o.Metadata), p.Body)
	var indented bytes.Buffer
	require.NoError(t, json.Indent(&indented, o.Metadata, "", "  "))
	assert.Equal(t, indented.String()+"\n", p.Body, "compact metadata is indented, and nothing else is in the body")

	require.Len(t, p.Attachments, 1)
	a := p.Attachments[0]
	assert.Equal(t, "chat-103646.txt", a.Name)
	assert.Equal(t, "attachment", a.Disposition)
	assert.Equal(t, "text/plain", a.ContentType)
	assert.Equal(t, "utf-8", strings.ToLower(a.Charset))
	assert.Equal(t, transcript, a.Data)
}

func TestSendWithoutTranscript(t *testing.T) {
	srv := startServer(t, serverOptions{security: SecurityTLS})
	s, _ := newSender(t, srv.config())
	o := testOutcome()
	pretty := "{\n    \"id\": 103646,\n    \"type\": \"voice_inbound\"\n}\n"
	o.Metadata = []byte(pretty)

	require.NoError(t, s.Send(t.Context(), o))

	msgs := srv.Messages()
	require.Len(t, msgs, 1)
	p := parseMessage(t, msgs[0].Data)
	assert.Equal(t, "text/plain", p.BodyType, "a single text part, no multipart")
	assert.Equal(t, pretty, p.Body, "metadata that spans lines is kept as is")
	assert.Empty(t, p.Attachments)
}

func TestSendResendKeepsMessageID(t *testing.T) {
	srv := startServer(t, serverOptions{security: SecuritySTARTTLS})
	s, _ := newSender(t, srv.config())
	o := testOutcome()

	require.NoError(t, s.Send(t.Context(), o))
	require.NoError(t, s.Send(t.Context(), o))

	msgs := srv.Messages()
	require.Len(t, msgs, 2)
	for _, m := range msgs {
		assert.Equal(t, o.MessageID, parseMessage(t, m.Data).Header.Get("Message-ID"))
	}
}

func TestSendSecurity(t *testing.T) {
	for _, tc := range []struct {
		security string
		tls      bool
	}{
		{SecuritySTARTTLS, true},
		{SecurityTLS, true},
		{SecurityNone, false},
	} {
		t.Run(tc.security, func(t *testing.T) {
			srv := startServer(t, serverOptions{security: tc.security, username: "crmsync", password: testPassword})
			s, _ := newSender(t, srv.config())

			require.NoError(t, s.Send(t.Context(), testOutcome()))

			msgs := srv.Messages()
			require.Len(t, msgs, 1)
			assert.Equal(t, tc.tls, msgs[0].TLS)
			assert.Equal(t, "crmsync", msgs[0].User)
		})
	}
}

func TestSendAuth(t *testing.T) {
	t.Run("right password", func(t *testing.T) {
		srv := startServer(t, serverOptions{security: SecuritySTARTTLS, username: "crmsync", password: testPassword})
		s, logs := newSender(t, srv.config())

		require.NoError(t, s.Send(t.Context(), testOutcome()))

		require.Len(t, srv.Messages(), 1)
		assert.Equal(t, []string{"crmsync"}, srv.Auths())
		assert.NotContains(t, logs.String(), testPassword)
	})

	for _, echo := range []bool{false, true} {
		t.Run("wrong password, echoed "+strconv.FormatBool(echo), func(t *testing.T) {
			srv := startServer(t, serverOptions{
				security: SecuritySTARTTLS, username: "crmsync", password: testPassword, echoPassword: echo,
			})
			cfg := srv.config()
			const wrong = "wrong-horse-battery-7"
			cfg.Password = wrong
			s, logs := newSender(t, cfg)

			err := s.Send(t.Context(), testOutcome())

			require.Error(t, err)
			assert.False(t, Retryable(err), "a rejected password does not get better by waiting: %v", err)
			assert.Contains(t, err.Error(), "535")
			assert.NotContains(t, err.Error(), wrong)
			assert.NotContains(t, err.Error(), testPassword)
			assert.NotContains(t, logs.String(), wrong)
			if echo {
				assert.Contains(t, err.Error(), "[REDACTED]", "the server's echo is redacted")
			}
			assert.Equal(t, []string{"crmsync"}, srv.Auths())
			assert.Zero(t, srv.Mails())
			assert.Empty(t, srv.Messages())
		})
	}
}

func TestSendRequiresSTARTTLS(t *testing.T) {
	// A plain-text server that offers AUTH but no STARTTLS: a downgrade.
	srv := startServer(t, serverOptions{security: SecurityNone, username: "crmsync", password: testPassword})
	cfg := srv.config()
	cfg.Security = SecuritySTARTTLS
	s, _ := newSender(t, cfg)

	err := s.Send(t.Context(), testOutcome())

	require.Error(t, err)
	assert.Contains(t, err.Error(), "STARTTLS")
	assert.False(t, Retryable(err))
	assert.Equal(t, 1, srv.Sessions(), "the client did connect")
	assert.Empty(t, srv.Auths(), "no credentials over plain text")
	assert.Zero(t, srv.Mails())
	assert.Empty(t, srv.Messages())
}

func TestSendVerifiesCertificate(t *testing.T) {
	for _, security := range []string{SecuritySTARTTLS, SecurityTLS} {
		t.Run(security, func(t *testing.T) {
			srv := startServer(t, serverOptions{security: security, username: "crmsync", password: testPassword})
			cfg := srv.config()
			cfg.InsecureSkipVerify = false
			s, _ := newSender(t, cfg)

			err := s.Send(t.Context(), testOutcome())

			require.Error(t, err)
			assert.Contains(t, err.Error(), "certificate")
			assert.False(t, Retryable(err))
			assert.Empty(t, srv.Auths())
			assert.Zero(t, srv.Mails())
		})
	}
}

func TestSendRefusesBadOutcome(t *testing.T) {
	for _, tc := range []struct {
		name      string
		change    func(*Outcome)
		injection bool
	}{
		{"to with CRLF", func(o *Outcome) { o.To = "crm-inbox@crm.example\r\nBcc: spy@evil.example" }, true},
		{"to with LF", func(o *Outcome) { o.To = "crm-inbox@crm.example\nBcc: spy@evil.example" }, true},
		{"subject with CRLF", func(o *Outcome) { o.Subject = "Session outcome\r\nBcc: spy@evil.example" }, true},
		{"subject with CR", func(o *Outcome) { o.Subject = "Session outcome\rBcc: spy@evil.example" }, true},
		{"subject with NUL", func(o *Outcome) { o.Subject = "Session outcome\x00" }, true},
		{"message id with CRLF", func(o *Outcome) { o.MessageID = "<call-1.outcome@crmsync>\r\nBcc: spy@evil.example" }, true},
		{"message id with LF", func(o *Outcome) { o.MessageID = "<call-1.outcome@crmsync>\n" }, true},
		{"transcript name with CRLF", func(o *Outcome) {
			o.Transcript, o.TranscriptName = []byte("hi"), "chat-1.txt\r\nContent-Type: text/html"
		}, true},
		{"transcript name with tab", func(o *Outcome) { o.Transcript, o.TranscriptName = []byte("hi"), "chat-1\t.txt" }, true},

		{"to not an address", func(o *Outcome) { o.To = "crm inbox" }, false},
		{"to two addresses", func(o *Outcome) { o.To = "a@crm.example, b@crm.example" }, false},
		{"to empty", func(o *Outcome) { o.To = "" }, false},
		{"subject empty", func(o *Outcome) { o.Subject = "" }, false},
		{"message id empty", func(o *Outcome) { o.MessageID = "" }, false},
		{"message id without @", func(o *Outcome) { o.MessageID = "<call-1>" }, false},
		{"message id half bracketed", func(o *Outcome) { o.MessageID = "<call-1@crmsync" }, false},
		{"message id with space", func(o *Outcome) { o.MessageID = "<call 1@crmsync>" }, false},
		{"metadata not JSON", func(o *Outcome) { o.Metadata = []byte(`{"id":`) }, false},
		{"metadata empty", func(o *Outcome) { o.Metadata = nil }, false},
		{"transcript without name", func(o *Outcome) { o.Transcript = []byte("hi") }, false},
		{"transcript name with slash", func(o *Outcome) { o.Transcript, o.TranscriptName = []byte("hi"), "../chat-1.txt" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, serverOptions{security: SecuritySTARTTLS})
			s, _ := newSender(t, srv.config())
			o := testOutcome()
			tc.change(&o)

			err := s.Send(t.Context(), o)

			require.Error(t, err)
			if tc.injection {
				assert.ErrorIs(t, err, ErrHeaderInjection)
			} else {
				assert.NotErrorIs(t, err, ErrHeaderInjection)
			}
			assert.False(t, Retryable(err))
			assert.Zero(t, srv.Sessions(), "nothing reached the server")
		})
	}
}

func TestSendServerReplies(t *testing.T) {
	reply := func(code int, enhanced smtp.EnhancedCode, text string) *smtp.SMTPError {
		return &smtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: text}
	}
	for _, tc := range []struct {
		name      string
		opts      serverOptions
		retryable bool
	}{
		{"451 after data", serverOptions{dataReply: reply(451, smtp.EnhancedCode{4, 3, 0}, "Try again later")}, true},
		{"550 after data", serverOptions{dataReply: reply(550, smtp.EnhancedCode{5, 7, 1}, "Message refused")}, false},
		{"451 to rcpt", serverOptions{rcptReply: reply(451, smtp.EnhancedCode{4, 4, 3}, "Directory unavailable")}, true},
		{"550 to rcpt", serverOptions{rcptReply: reply(550, smtp.EnhancedCode{5, 1, 1}, "No such mailbox")}, false},
		{"421 to mail", serverOptions{mailReply: reply(421, smtp.EnhancedCode{4, 3, 2}, "Shutting down")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.security = SecuritySTARTTLS
			srv := startServer(t, tc.opts)
			s, _ := newSender(t, srv.config())

			err := s.Send(t.Context(), testOutcome())

			require.Error(t, err)
			assert.Equal(t, tc.retryable, Retryable(err), "%v", err)
			assert.Empty(t, srv.Messages())
		})
	}
}

func TestSendCancel(t *testing.T) {
	inData := make(chan struct{}, 1)
	srv := startServer(t, serverOptions{security: SecuritySTARTTLS, blockData: inData})
	cfg := srv.config()
	cfg.Timeout = 30 * time.Second
	s, _ := newSender(t, cfg)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		<-inData
		cancel()
	}()

	start := time.Now()
	err := s.Send(ctx, testOutcome())

	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	assert.True(t, Retryable(err))
	assert.Less(t, time.Since(start), 10*time.Second, "cancel ends the wait for the server's reply")
}

func TestSendConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	s, _ := newSender(t, SMTP{Host: "127.0.0.1", Port: port, From: "no-reply@crmsync.example", Timeout: 5 * time.Second})

	err = s.Send(t.Context(), testOutcome())

	require.Error(t, err)
	assert.True(t, Retryable(err), "%v", err)
}
