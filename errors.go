package crmsync

import (
	"errors"
	"fmt"
)

// Error codes. The HTTP layer maps each to one status in one table; only
// EINTERNAL is logged as a fault of ours.
const (
	EINVALID      = "invalid"      // the client sent something wrong: 400
	EUNAUTHORIZED = "unauthorized" // missing or wrong credential: 401
	EFORBIDDEN    = "forbidden"    // a valid credential that may not do this: 403
	ENOTFOUND     = "not_found"    // 404
	ECONFLICT     = "conflict"     // the state does not allow it: 409
	ETOOLARGE     = "too_large"    // body over the limit: 413
	EUNAVAILABLE  = "unavailable"  // a dependency is down, try again: 503
	EINTERNAL     = "internal"     // our fault: 500
)

// Error is an error meant for the client: a code, the field it is about
// (a JSON path such as data.call_id, or empty) and a message that says why.
type Error struct {
	Code    string
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Errorf builds an *Error.
func Errorf(code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// HTTPStatus is the one table from error codes to HTTP statuses.
func HTTPStatus(code string) int {
	switch code {
	case EINVALID:
		return 400
	case EUNAUTHORIZED:
		return 401
	case EFORBIDDEN:
		return 403
	case ENOTFOUND:
		return 404
	case ECONFLICT:
		return 409
	case ETOOLARGE:
		return 413
	case EUNAVAILABLE:
		return 503
	}
	return 500
}
