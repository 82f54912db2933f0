// Package httpjson writes crmsync's JSON answers and errors the same way on
// every route: a *crmsync.Error goes back to the client with the status of
// its code and the field it is about; anything else is a fault of ours,
// logged once here and answered with a bare "internal error".
package httpjson

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/crmsync/crmsync"
)

// Write writes v as indented JSON with status.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Error writes err as {"error":{"code","message","field"}} with the status
// of its code. Only internal errors are logged (logger may be nil).
func Error(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	code := crmsync.ErrorCode(err)
	body := map[string]string{"code": code}
	var e *crmsync.Error
	if errors.As(err, &e) {
		body["message"] = e.Message
		if e.Field != "" {
			body["field"] = e.Field
		}
	} else {
		body["message"] = "internal error"
		if logger != nil {
			logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
	}
	if code == crmsync.EUNAUTHORIZED && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="crmsync"`)
	}
	Write(w, crmsync.HTTPStatus(code), map[string]any{"error": body})
}
