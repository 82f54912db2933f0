package mail

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"header injection", fmt.Errorf("%w: to", ErrHeaderInjection), false},
		{"451 while connecting", fmt.Errorf("dial failed: %w", &textproto.Error{Code: 451, Msg: "try later"}), true},
		{"454 auth temporarily failed", fmt.Errorf("SMTP AUTH failed: %w", &textproto.Error{Code: 454, Msg: "4.7.0 try later"}), true},
		{"535 auth failed", fmt.Errorf("SMTP AUTH failed: %w", &textproto.Error{Code: 535, Msg: "5.7.8 bad credentials"}), false},
		{"550", &textproto.Error{Code: 550, Msg: "no such user"}, false},
		{"deadline", fmt.Errorf("mail: send: %w", context.DeadlineExceeded), true},
		{"canceled", fmt.Errorf("mail: send: %w", context.Canceled), true},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{"eof", fmt.Errorf("reading reply: %w", io.EOF), true},
		{"unknown authority", fmt.Errorf("tls: %w", x509.UnknownAuthorityError{}), false},
		{"no STARTTLS", errors.New(`STARTTLS mode set to: "TLSMandatory", but target host does not support STARTTLS`), false},
		{"redacted 451", &redactedError{err: &textproto.Error{Code: 451, Msg: "x"}, secret: "x"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, Retryable(tc.err))
		})
	}
}
