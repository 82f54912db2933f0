// Package storage is where a session's files go outside the CRM: the
// Target interface every backend (local folder, SFTP, Google Cloud
// Storage) implements, the sentinel errors they translate their vendor's
// errors into, and the vendor's folder layout and file names.
package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// Target stores files below one root (a folder path on the server or in
// the bucket). Names are slash-separated paths relative to that root, made
// by Layout, e.g. "ujet-metadata/call-103646.json". Every method takes a
// context first and honours its cancellation.
type Target interface {
	// Put stores r under name atomically: until Put returns, nothing (not
	// even part of the file) is visible under name. The bytes are
	// verified: what was stored has the size read from r (and opts.Size
	// when it is not -1), and its SHA-256 is returned.
	//
	// If name already holds a file with the same size and SHA-256, Put
	// returns that file and no error: a re-run is not an error and
	// duplicates nothing. If it holds a different file, Put returns
	// ErrExist and changes nothing: nothing is ever overwritten.
	Put(ctx context.Context, name string, r io.Reader, opts PutOptions) (Object, error)
	// Stat describes the file at name, or returns ErrNotExist.
	Stat(ctx context.Context, name string) (Object, error)
	// Open reads the file at name, or returns ErrNotExist.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// List returns the files whose names start with prefix, sorted by name.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Delete removes the file at name, or returns ErrNotExist.
	Delete(ctx context.Context, name string) error
	// Close releases connections.
	Close() error
}

// PutOptions describe the file being stored.
type PutOptions struct {
	// Size is the expected size in bytes, or -1 when unknown.
	Size int64
	// ContentType is the MIME type, when the backend keeps one.
	ContentType string
}

// Object is one stored file.
type Object struct {
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256,omitempty"` // hex; empty when the backend cannot tell without reading
	ModTime time.Time `json:"mod_time,omitzero"`
	// URL is where the file can be fetched (gs://bucket/path,
	// sftp://host/path, file:///path).
	URL string `json:"url,omitempty"`
}

// Errors backends translate their vendor's errors into, so callers (and
// `crmsync check storage`) can say in plain words what is wrong.
var (
	ErrNotExist   = errors.New("storage: file does not exist")
	ErrExist      = errors.New("storage: a different file is already stored under that name")
	ErrAuth       = errors.New("storage: authentication failed")
	ErrHostKey    = errors.New("storage: the server's host key does not match")
	ErrPermission = errors.New("storage: permission denied")
	ErrNoRoot     = errors.New("storage: the bucket or folder does not exist")
	ErrSize       = errors.New("storage: stored size differs from the bytes sent")
)
