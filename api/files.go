package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"strings"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/jobs"
	"github.com/crmsync/crmsync/storage"
)

// FileIntake takes a session's files in.
type FileIntake interface {
	Receive(ctx context.Context, k crmsync.SessionKey, meta jobs.FileMeta, r io.Reader, size int64) (jobs.FileRecord, error)
	Fetch(ctx context.Context, k crmsync.SessionKey, meta jobs.FileMeta, url string) (string, error)
}

// postFile takes one file: a raw body, the first file of a multipart form,
// or JSON naming a URL to fetch. What the file is comes from the query
// (kind, format, media_id), from form fields before the file, or from the
// JSON.
func (s *Server) postFile(w http.ResponseWriter, r *http.Request) {
	key, err := crmsync.ParseSessionKey(r.PathValue("session"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	q := r.URL.Query()
	meta := jobs.FileMeta{Kind: storage.FileKind(q.Get("kind")), Format: q.Get("format"), MediaID: q.Get("media_id")}
	ctype, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case ctype == "application/json":
		var body struct {
			Kind    string `json:"kind"`
			Format  string `json:"format"`
			MediaID string `json:"media_id"`
			URL     string `json:"url"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			s.error(w, r, crmsync.Errorf(crmsync.EINVALID, "", "want {\"kind\",\"format\",\"media_id\",\"url\"}: %v", err))
			return
		}
		if body.Kind != "" {
			meta.Kind = storage.FileKind(body.Kind)
		}
		meta.Format = firstSet(body.Format, meta.Format, formatOf(path.Ext(body.URL)))
		meta.MediaID = firstSet(body.MediaID, meta.MediaID)
		if body.URL == "" {
			s.error(w, r, crmsync.Errorf(crmsync.EINVALID, "url", "required in a JSON body (send the file itself as the raw body or multipart)"))
			return
		}
		name, err := s.Files.Fetch(r.Context(), key, meta, body.URL)
		if err != nil {
			s.error(w, r, err)
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]any{"file": map[string]string{"name": name, "status": "fetching"}})
	case ctype == "multipart/form-data":
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				s.error(w, r, crmsync.Errorf(crmsync.EINVALID, "file", "the form has no file part"))
				return
			}
			if err != nil {
				s.error(w, r, crmsync.Errorf(crmsync.EINVALID, "", "malformed multipart body: %v", err))
				return
			}
			if part.FileName() == "" {
				v, _ := io.ReadAll(io.LimitReader(part, 256))
				switch part.FormName() {
				case "kind":
					meta.Kind = storage.FileKind(v)
				case "format":
					meta.Format = string(v)
				case "media_id":
					meta.MediaID = string(v)
				}
				continue
			}
			meta.Format = firstSet(meta.Format, formatOf(path.Ext(part.FileName())), formatOfType(part.Header.Get("Content-Type")))
			s.receive(w, r, key, meta, part, -1)
			return
		}
	default:
		meta.Format = firstSet(meta.Format, formatOfType(ctype))
		s.receive(w, r, key, meta, r.Body, r.ContentLength)
	}
}

func (s *Server) receive(w http.ResponseWriter, r *http.Request, key crmsync.SessionKey, meta jobs.FileMeta, body io.Reader, size int64) {
	rec, err := s.Files.Receive(r.Context(), key, meta, body, size)
	if errors.Is(err, jobs.ErrTooLarge) {
		s.error(w, r, crmsync.Errorf(crmsync.ETOOLARGE, "", "%v", err))
		return
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"file": rec})
}

func firstSet(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func formatOf(ext string) string {
	switch strings.ToLower(ext) {
	case ".mp3":
		return "mp3"
	case ".wav":
		return "wav"
	}
	return ""
}

func formatOfType(ctype string) string {
	switch strings.ToLower(ctype) {
	case "audio/mpeg", "audio/mp3":
		return "mp3"
	case "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave":
		return "wav"
	}
	return ""
}
