package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/textproto"

	gomail "github.com/wneessen/go-mail"
)

// Retryable reports whether sending again later may succeed where err
// failed: yes for 4xx (transient) SMTP replies, timeouts, refused, reset or
// dropped connections and a cancelled context; no for 5xx (permanent)
// replies, a rejected password, a certificate that does not verify, a
// server without STARTTLS, a bad Outcome or config, and anything else it
// does not recognise.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, ErrHeaderInjection) {
		return false
	}
	// A certificate problem travels inside network errors; it stays until
	// someone changes the server or the config.
	var (
		verifyErr   *tls.CertificateVerificationError
		authorityEr x509.UnknownAuthorityError
		hostnameErr x509.HostnameError
		invalidErr  x509.CertificateInvalidError
	)
	if errors.As(err, &verifyErr) || errors.As(err, &authorityEr) ||
		errors.As(err, &hostnameErr) || errors.As(err, &invalidErr) {
		return false
	}

	// A reply from the server during the mail transaction.
	var sendErr *gomail.SendError
	if errors.As(err, &sendErr) {
		if code := sendErr.ErrorCode(); code != 0 {
			return code >= 400 && code < 500
		}
		switch sendErr.Reason {
		case gomail.ErrGetSender, gomail.ErrGetRcpts, gomail.ErrNoUnencoded:
			return false // the message itself is wrong
		}
		return true // the connection broke mid-transaction
	}
	// A reply while connecting, greeting or authenticating.
	var replyErr *textproto.Error
	if errors.As(err, &replyErr) {
		return replyErr.Code >= 400 && replyErr.Code < 500
	}

	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true // timeouts, refused and reset connections, DNS
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}
