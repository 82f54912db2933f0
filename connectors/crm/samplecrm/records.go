package samplecrm

import (
	"encoding/base64"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

var recordSpecs = []fieldSpec{
	{"account_id", []string{"accountid", "contactid"}},
	{"subject", []string{"subject", "title"}},
	{"description", []string{"description"}},
	{"status", []string{"status"}},
}

func (r *Record) apply(f fields) {
	for name, v := range f.known {
		switch name {
		case "account_id":
			r.AccountID = v
		case "subject":
			r.Subject = v
		case "description":
			r.Description = v
		case "status":
			r.Status = v
		}
	}
	r.Fields = mergeFields(r.Fields, f.extra)
}

// recordFieldsFrom reads a record body and checks the status and account id
// it carries. Whether the account exists is for the store to say.
func (s *Server) recordFieldsFrom(w http.ResponseWriter, r *http.Request) (fields, error) {
	p, _, err := readPayload(w, r, s.maxBody)
	if err != nil {
		return fields{}, err
	}
	f, err := split(p, recordSpecs)
	if err != nil {
		return fields{}, err
	}
	if f.empty() {
		return fields{}, invalid("body: no record fields")
	}
	if f.has("status") {
		st := strings.ToLower(strings.TrimSpace(f.known["status"]))
		if st != StatusOpen && st != StatusClosed {
			return fields{}, invalid("%s: must be %q or %q, got %q", f.key("status"), StatusOpen, StatusClosed, f.known["status"])
		}
		f.known["status"] = st
	}
	if f.has("account_id") {
		f.known["account_id"] = strings.TrimSpace(f.known["account_id"])
		if f.known["account_id"] == "" {
			return fields{}, invalid("%s: must not be empty", f.key("account_id"))
		}
	}
	return f, nil
}

func (s *Server) createRecord(w http.ResponseWriter, r *http.Request) error {
	f, err := s.recordFieldsFrom(w, r)
	if err != nil {
		return err
	}
	if !f.has("account_id") {
		return invalid("account_id: required (or contactId)")
	}
	rec := Record{Status: StatusOpen}
	rec.apply(f)
	created, ok := s.store.createRecord(rec)
	if !ok {
		return invalid("%s: account %s not found", f.key("account_id"), rec.AccountID)
	}
	w.Header().Set("Location", "/api/records/"+created.ID)
	writeData(w, http.StatusCreated, created)
	return nil
}

func (s *Server) getRecord(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	rec, ok := s.store.record(id)
	if !ok {
		return recordNotFound(id)
	}
	writeData(w, http.StatusOK, rec)
	return nil
}

func (s *Server) updateRecord(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, ok := s.store.record(id); !ok {
		return recordNotFound(id)
	}
	f, err := s.recordFieldsFrom(w, r)
	if err != nil {
		return err
	}
	rec, res := s.store.updateRecord(id, func(rec *Record) { rec.apply(f) })
	switch res {
	case noRecord:
		return recordNotFound(id)
	case noAccount:
		return invalid("%s: account %s not found", f.key("account_id"), f.known["account_id"])
	}
	writeData(w, http.StatusOK, rec)
	return nil
}

func (s *Server) searchRecords(w http.ResponseWriter, r *http.Request) error {
	sr, err := parseSearch(r.URL.Query(), recordFields)
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, itemList[*Record]{Items: s.store.searchRecords(sr)})
	return nil
}

func recordNotFound(id string) error { return notFound("record %s not found", id) }

var commentSpecs = []fieldSpec{
	{"body", []string{"comment", "body", "text", "commentbody"}},
	{"format", []string{"format", "textformat"}},
	{"content_type", []string{"contenttype", "mimetype"}},
}

func (s *Server) createComment(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, ok := s.store.record(id); !ok {
		return recordNotFound(id)
	}
	p, _, err := readPayload(w, r, s.maxBody)
	if err != nil {
		return err
	}
	f, err := split(p, commentSpecs)
	if err != nil {
		return err
	}
	if !f.has("body") {
		return invalid("comment: required (send comment, body or text)")
	}
	c := Comment{Body: f.known["body"], ContentType: f.known["content_type"]}
	format := f.known["format"]
	if format == "" {
		format = r.URL.Query().Get("format")
	}
	c.HTML = strings.EqualFold(format, "html") || mediaTypeIs(c.ContentType, "text/html")
	for k, v := range f.extra {
		if n := normalize(k); n == "html" || n == "ishtml" {
			html, err := flag(k, v)
			if err != nil {
				return err
			}
			c.HTML = c.HTML || html
			delete(f.extra, k)
		}
	}
	if len(f.extra) > 0 {
		c.Fields = f.extra
	}
	created, ok := s.store.addComment(id, c)
	if !ok {
		return recordNotFound(id)
	}
	writeData(w, http.StatusCreated, created)
	return nil
}

func mediaTypeIs(contentType, want string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == want
}

func (s *Server) listComments(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	list, ok := s.store.comments(id)
	if !ok {
		return recordNotFound(id)
	}
	writeData(w, http.StatusOK, itemList[*Comment]{Items: list})
	return nil
}

var attachmentSpecs = []fieldSpec{
	{"data", []string{"file", "data", "filedata"}},
	{"filename", []string{"filename"}},
	{"content_type", []string{"contenttype", "mimetype"}},
}

// attachmentView is an attachment as the API shows it: with its URL.
type attachmentView struct {
	ID          string `json:"id"`
	RecordID    string `json:"record_id"`
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int    `json:"size"`
	URL         string `json:"url"`
}

func (s *Server) view(r *http.Request, a *Attachment) attachmentView {
	return attachmentView{
		ID:          a.ID,
		RecordID:    a.RecordID,
		Filename:    a.Filename,
		ContentType: a.ContentType,
		Size:        a.Size,
		URL:         s.baseURL(r) + attachmentPath(a),
	}
}

func attachmentPath(a *Attachment) string {
	return "/api/records/" + a.RecordID + "/attachments/" + a.ID
}

func (s *Server) baseURL(r *http.Request) string {
	if s.opts.BaseURL != "" {
		return s.opts.BaseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// createAttachment takes a multipart file part or a base64 field.
func (s *Server) createAttachment(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, ok := s.store.record(id); !ok {
		return recordNotFound(id)
	}
	p, file, err := readPayload(w, r, s.maxUpload)
	if err != nil {
		return err
	}
	f, err := split(p, attachmentSpecs)
	if err != nil {
		return err
	}
	a := Attachment{}
	if file != nil {
		a.Filename, a.ContentType, a.Bytes = file.filename, file.contentType, file.data
	} else {
		if !f.has("data") {
			return invalid("file: required (a multipart file part, or base64 in file, data or file_data)")
		}
		a.Bytes, a.ContentType, err = decodeBase64(f.known["data"])
		if err != nil {
			return invalid("%s: %v", f.key("data"), err)
		}
	}
	if v := f.known["filename"]; v != "" {
		a.Filename = v
	}
	if v := f.known["content_type"]; v != "" {
		a.ContentType = v
	}
	if a.ContentType == "" || a.ContentType == "application/octet-stream" {
		a.ContentType = http.DetectContentType(a.Bytes)
	}
	if a.Filename == "" {
		a.Filename = "attachment"
	}
	created, ok := s.store.addAttachment(id, a)
	if !ok {
		return recordNotFound(id)
	}
	v := s.view(r, created)
	w.Header().Set("Location", v.URL)
	writeData(w, http.StatusCreated, v)
	return nil
}

// decodeBase64 accepts standard or URL-safe base64, padded or not, with
// line breaks, or a data: URL (whose media type it returns).
func decodeBase64(s string) ([]byte, string, error) {
	contentType := ""
	if rest, ok := strings.CutPrefix(s, "data:"); ok {
		meta, payload, found := strings.Cut(rest, ",")
		if !found || !strings.HasSuffix(meta, ";base64") {
			return nil, "", errorString("a data: URL must be base64")
		}
		contentType = strings.TrimSuffix(meta, ";base64")
		s = payload
	}
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, contentType, nil
		}
	}
	return nil, "", errorString("not valid base64")
}

type errorString string

func (e errorString) Error() string { return string(e) }

func (s *Server) listAttachments(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	list, ok := s.store.attachmentList(id)
	if !ok {
		return recordNotFound(id)
	}
	views := make([]attachmentView, len(list))
	for i, a := range list {
		views[i] = s.view(r, a)
	}
	writeData(w, http.StatusOK, itemList[attachmentView]{Items: views})
	return nil
}

func (s *Server) downloadAttachment(w http.ResponseWriter, r *http.Request) error {
	id, aid := r.PathValue("id"), r.PathValue("aid")
	if _, ok := s.store.record(id); !ok {
		return recordNotFound(id)
	}
	a, ok := s.store.attachment(id, aid)
	if !ok {
		return notFound("attachment %s not found on record %s", aid, id)
	}
	h := w.Header()
	h.Set("Content-Type", a.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(a.Bytes)))
	h.Set("X-Content-Type-Options", "nosniff")
	disposition := mime.FormatMediaType("attachment", map[string]string{"filename": a.Filename})
	if disposition == "" {
		disposition = "attachment"
	}
	h.Set("Content-Disposition", disposition)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(a.Bytes)
	return nil
}
