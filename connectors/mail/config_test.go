package mail

import (
	"bytes"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSMTPValidate(t *testing.T) {
	const password = "hunter2-but-longer"
	valid := func() SMTP {
		return SMTP{Host: "smtp.crm.example", Username: "crmsync", Password: password, From: "no-reply@crmsync.example"}
	}
	for _, tc := range []struct {
		name      string
		change    func(*SMTP)
		wantField string // empty: valid
	}{
		{"minimal", func(*SMTP) {}, ""},
		{"no auth", func(s *SMTP) { s.Username, s.Password = "", "" }, ""},
		{"implicit tls", func(s *SMTP) { s.Security, s.Port = SecurityTLS, 465 }, ""},
		{"none on localhost", func(s *SMTP) { s.Security, s.Host = SecurityNone, "localhost" }, ""},
		{"none on 127.0.0.1", func(s *SMTP) { s.Security, s.Host = SecurityNone, "127.0.0.1" }, ""},
		{"none on ::1", func(s *SMTP) { s.Security, s.Host = SecurityNone, "::1" }, ""},
		{"ipv6 host", func(s *SMTP) { s.Host = "2001:db8::25" }, ""},
		{"from with display name", func(s *SMTP) { s.From = "crmsync <no-reply@crmsync.example>" }, ""},
		{"insecure skip verify", func(s *SMTP) { s.InsecureSkipVerify = true }, ""},

		{"no host", func(s *SMTP) { s.Host = "" }, "host"},
		{"host with port", func(s *SMTP) { s.Host = "smtp.crm.example:587" }, "host"},
		{"host with scheme", func(s *SMTP) { s.Host = "smtp://smtp.crm.example" }, "host"},
		{"host with line break", func(s *SMTP) { s.Host = "smtp.crm.example\r\n" }, "host"},
		{"negative port", func(s *SMTP) { s.Port = -1 }, "port"},
		{"port too high", func(s *SMTP) { s.Port = 65536 }, "port"},
		{"unknown security", func(s *SMTP) { s.Security = "ssl" }, "security"},
		{"none on a remote host", func(s *SMTP) { s.Security = SecurityNone }, "security"},
		{"none on a private address", func(s *SMTP) { s.Security, s.Host = SecurityNone, "10.0.0.25" }, "security"},
		{"username without password", func(s *SMTP) { s.Password = "" }, "password"},
		{"password without username", func(s *SMTP) { s.Username = "" }, "username"},
		{"username with line break", func(s *SMTP) { s.Username = "crmsync\r\nMAIL FROM:<x@y>" }, "username"},
		{"no from", func(s *SMTP) { s.From = "" }, "from"},
		{"from not an address", func(s *SMTP) { s.From = "crmsync" }, "from"},
		{"from two addresses", func(s *SMTP) { s.From = "a@crmsync.example, b@crmsync.example" }, "from"},
		{"from with line break", func(s *SMTP) { s.From = "no-reply@crmsync.example\r\nBcc: spy@evil.example" }, "from"},
		{"negative timeout", func(s *SMTP) { s.Timeout = -time.Second }, "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := valid()
			tc.change(&s)
			err := s.Validate()
			if tc.wantField == "" {
				require.NoError(t, err)
				_, err = NewSender(s, nil)
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantField)
			assert.NotContains(t, err.Error(), password)
			assert.False(t, Retryable(err))
			_, err = NewSender(s, nil)
			assert.Error(t, err)
		})
	}
}

func TestSMTPFromInjection(t *testing.T) {
	s := SMTP{Host: "smtp.crm.example", From: "no-reply@crmsync.example\nBcc: spy@evil.example"}
	assert.ErrorIs(t, s.Validate(), ErrHeaderInjection)
}

func TestSMTPDefaults(t *testing.T) {
	for _, tc := range []struct {
		security string
		port     int
	}{
		{"", 587},
		{SecuritySTARTTLS, 587},
		{SecurityTLS, 465},
		{SecurityNone, 25},
	} {
		s := SMTP{Security: tc.security}
		assert.Equal(t, tc.port, s.port(), tc.security)
		assert.Equal(t, 30*time.Second, s.timeout())
	}
	s := SMTP{Port: 2525, Timeout: time.Second}
	assert.Equal(t, 2525, s.port())
	assert.Equal(t, time.Second, s.timeout())
}

func TestSMTPNeverPrintsPassword(t *testing.T) {
	const password = "hunter2-but-longer"
	s := SMTP{Host: "smtp.crm.example", Username: "crmsync", Password: password, From: "no-reply@crmsync.example"}

	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	logger.Info("config", "smtp", s)
	logger.Info("config", "smtp", &s)
	assert.NotContains(t, logs.String(), password)
	assert.Contains(t, logs.String(), `"host":"smtp.crm.example"`)
	assert.Contains(t, logs.String(), `"password":"[REDACTED]"`)

	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		assert.NotContains(t, fmt.Sprintf(format, s), password, format)
	}
}
