package gcs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"cloud.google.com/go/auth"
	gcs "cloud.google.com/go/storage"
	"golang.org/x/oauth2"
	"google.golang.org/api/googleapi"

	crmstorage "github.com/crmsync/crmsync/storage"
)

var (
	// errCorrupt: what the server stored is not what was sent. The object
	// is removed and the Put may be tried again.
	errCorrupt = errors.New("the stored object does not match the bytes sent")
	// errVanished: the object that made an upload's precondition fail was
	// gone by the time it was read. Trying again settles it.
	errVanished = errors.New("the existing object was deleted while being compared")
)

// translate maps the client library's errors onto storage's sentinels,
// keeping the original in the chain for its message.
func translate(err error) error {
	var sentinel error
	switch {
	case errors.Is(err, gcs.ErrObjectNotExist):
		sentinel = crmstorage.ErrNotExist
	case errors.Is(err, gcs.ErrBucketNotExist):
		sentinel = crmstorage.ErrNoRoot
	default:
		sentinel = authSentinel(err)
	}
	if sentinel == nil {
		return err
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}

// uploadError translates an upload's error. On upload a 404 can only mean
// the bucket, and a 400 about a checksum means bytes damaged on the way.
func uploadError(err error) error {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		switch {
		case ge.Code == http.StatusNotFound:
			return fmt.Errorf("%w: %w", crmstorage.ErrNoRoot, err)
		case ge.Code == http.StatusBadRequest && mentionsChecksum(ge):
			return fmt.Errorf("%w: %w", errCorrupt, err)
		}
	}
	return translate(err)
}

func mentionsChecksum(ge *googleapi.Error) bool {
	msg := strings.ToLower(ge.Message + " " + ge.Body)
	return strings.Contains(msg, "crc32c") || strings.Contains(msg, "md5")
}

// authSentinel recognises refused credentials (401, or the token endpoint
// turning them down) and refused permissions (403).
func authSentinel(err error) error {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		switch ge.Code {
		case http.StatusUnauthorized:
			return crmstorage.ErrAuth
		case http.StatusForbidden:
			return crmstorage.ErrPermission
		}
		return nil
	}
	if c := tokenStatus(err); c >= 400 && c < 500 && c != http.StatusTooManyRequests && c != http.StatusRequestTimeout {
		return crmstorage.ErrAuth
	}
	return nil
}

// tokenStatus is the HTTP status with which a token endpoint refused to
// issue an access token, or 0.
func tokenStatus(err error) int {
	var ae *auth.Error
	if errors.As(err, &ae) && ae.Response != nil {
		return ae.Response.StatusCode
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.StatusCode
	}
	return 0
}

// isStatus reports whether err is an HTTP error with that status.
func isStatus(err error, code int) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == code
}

// Retryable reports whether err may clear by itself if the same call is
// made again: 408, 429 and 5xx answers, connection failures, timeouts,
// bytes damaged on the way. Missing buckets or files, refused credentials
// and permissions, a different file already stored, a source of the wrong
// size and a cancelled context are not.
func Retryable(err error) bool {
	switch {
	case err == nil,
		errors.Is(err, context.Canceled),
		errors.Is(err, crmstorage.ErrExist),
		errors.Is(err, crmstorage.ErrNotExist),
		errors.Is(err, crmstorage.ErrNoRoot),
		errors.Is(err, crmstorage.ErrAuth),
		errors.Is(err, crmstorage.ErrPermission):
		return false
	case errors.Is(err, errCorrupt), errors.Is(err, errVanished),
		errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.Is(err, crmstorage.ErrSize):
		return false
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code == http.StatusRequestTimeout || ge.Code == http.StatusTooManyRequests || ge.Code >= 500 && ge.Code < 600
	}
	if c := tokenStatus(err); c != 0 {
		return c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500 && c < 600
	}
	return anyInChain(err, gcs.ShouldRetry)
}

// anyInChain applies f to err and everything it wraps, following joined
// and multiply wrapped errors too.
func anyInChain(err error, f func(error) bool) bool {
	if err == nil {
		return false
	}
	if f(err) {
		return true
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return anyInChain(u.Unwrap(), f)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if anyInChain(e, f) {
				return true
			}
		}
	}
	return false
}
