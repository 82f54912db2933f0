package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
)

// Check proves a target works end to end the way an export uses it: it
// writes a small probe file crmsync-check-<random>.txt at the root, stats
// it, reads it back and compares, then deletes it. The error says in plain
// words which step failed and why, and wraps the backend's error, so
// errors.Is finds the sentinel (ErrAuth, ErrPermission, ErrNoRoot...).
func Check(ctx context.Context, target Target) error {
	name := "crmsync-check-" + rand.Text() + ".txt"
	data := fmt.Appendf(nil, "crmsync storage check, %s\n", time.Now().UTC().Format(time.RFC3339))
	digest := sha256.Sum256(data)
	want := hex.EncodeToString(digest[:])

	obj, err := target.Put(ctx, name, bytes.NewReader(data), PutOptions{Size: int64(len(data)), ContentType: "text/plain"})
	if err != nil {
		return &checkError{step: "write the probe file", name: name, err: err}
	}
	if err := probe(ctx, target, name, data, want, obj); err != nil {
		// Clean up even when ctx is what failed.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		derr := target.Delete(dctx, name)
		err.leftBehind = derr != nil && !errors.Is(derr, ErrNotExist)
		return err
	}
	if err := target.Delete(ctx, name); err != nil {
		return &checkError{step: "delete the probe file", name: name, err: err, leftBehind: true}
	}
	return nil
}

// probe checks the stored probe file after a successful Put.
func probe(ctx context.Context, target Target, name string, data []byte, want string, put Object) *checkError {
	size := int64(len(data))
	if put.Size != size || put.SHA256 != want {
		return &checkError{step: "write the probe file", name: name,
			err: fmt.Errorf("the target reports %d bytes with SHA-256 %s, sent %d bytes with SHA-256 %s: %w", put.Size, put.SHA256, size, want, ErrSize)}
	}
	st, err := target.Stat(ctx, name)
	if err != nil {
		return &checkError{step: "find the probe file after writing it", name: name, err: err}
	}
	if st.Size != size || (st.SHA256 != "" && st.SHA256 != want) {
		return &checkError{step: "find the probe file after writing it", name: name,
			err: fmt.Errorf("it has %d bytes with SHA-256 %q, sent %d bytes with SHA-256 %s: %w", st.Size, st.SHA256, size, want, ErrSize)}
	}
	rc, err := target.Open(ctx, name)
	if err != nil {
		return &checkError{step: "read the probe file back", name: name, err: err}
	}
	got, err := io.ReadAll(io.LimitReader(rc, size+1))
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return &checkError{step: "read the probe file back", name: name, err: err}
	}
	if !bytes.Equal(got, data) {
		return &checkError{step: "read the probe file back", name: name,
			err: fmt.Errorf("read %d bytes that differ from the %d written", len(got), size)}
	}
	return nil
}

// checkError is a failed step of Check.
type checkError struct {
	step       string // "write the probe file"
	name       string
	err        error
	leftBehind bool
}

func (e *checkError) Error() string {
	msg := "could not " + e.step + ": " + reason(e.err)
	if detail := e.err.Error(); detail != reason(e.err) {
		msg += " (" + detail + ")"
	}
	if e.leftBehind {
		msg += "; the probe file " + e.name + " may be left behind"
	}
	return msg
}

func (e *checkError) Unwrap() error { return e.err }

// reason says why in plain words, for the errors that have a known cause.
func reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.text
		}
	}
	return err.Error()
}

var reasons = []struct {
	err  error
	text string
}{
	{ErrAuth, "authentication failed"},
	{ErrHostKey, "the server's host key does not match the one configured"},
	{ErrPermission, "permission denied"},
	{ErrNoRoot, "the bucket or folder does not exist"},
	{ErrNotExist, "the file is not there"},
	{ErrExist, "a different file is already stored under that name"},
	{ErrSize, "the stored size differs from the bytes sent"},
	{ErrInvalidName, "the file name is not allowed"},
	{context.DeadlineExceeded, "timed out"},
	{context.Canceled, "cancelled"},
}
