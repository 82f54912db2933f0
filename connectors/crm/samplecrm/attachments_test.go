package samplecrm

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// multipartBody builds a multipart form: fields first, then one file part.
func multipartBody(t testing.TB, fields map[string]string, fileField, filename, contentType string, data []byte) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		require.NoError(t, mw.WriteField(k, v))
	}
	if fileField != "" {
		h := textproto.MIMEHeader{}
		disposition := `form-data; name="` + fileField + `"`
		if filename != "" {
			disposition += `; filename="` + filename + `"`
		}
		h.Set("Content-Disposition", disposition)
		if contentType != "" {
			h.Set("Content-Type", contentType)
		}
		w, err := mw.CreatePart(h)
		require.NoError(t, err)
		_, err = w.Write(data)
		require.NoError(t, err)
	}
	require.NoError(t, mw.Close())
	return buf.Bytes(), mw.FormDataContentType()
}

func newRecord(t testing.TB, c *crm) string {
	t.Helper()
	a := c.mustCreate(t, "/api/accounts", `{"name":"A"}`)
	return c.mustCreate(t, "/api/records", `{"account_id":"`+a+`","subject":"s"}`)
}

func TestAttachments(t *testing.T) {
	c := start(t, Options{})
	rec := newRecord(t, c)
	path := "/api/records/" + rec + "/attachments"
	wav := []byte("RIFF\x24\x00\x00\x00WAVEfmt recording")
	png := []byte("\x89PNG\r\n\x1a\nnot really a picture")

	type upload struct {
		name        string
		body        any
		contentType string // of the request, for []byte bodies
		wantName    string
		wantType    string
		wantBytes   []byte
	}
	mp := func(fields map[string]string, field, filename, ctype string, data []byte) ([]byte, string) {
		return multipartBody(t, fields, field, filename, ctype, data)
	}
	body1, type1 := mp(map[string]string{"id": rec}, "file", "call.wav", "audio/wav", wav)
	body2, type2 := mp(nil, "recording", "call.wav", "", wav)
	body3, type3 := mp(map[string]string{"filename": "renamed.txt", "content_type": "text/plain"}, "upload", "x.bin", "application/octet-stream", []byte("hello"))
	body4, type4 := mp(nil, "file", "", "", []byte("bare file field"))
	b64 := base64.StdEncoding.EncodeToString(png)

	uploads := []upload{
		{name: "multipart file part", body: body1, contentType: type1, wantName: "call.wav", wantType: "audio/wav", wantBytes: wav},
		{name: "multipart, other field name, sniffed type", body: body2, contentType: type2, wantName: "call.wav", wantType: "audio/wave", wantBytes: wav},
		{name: "multipart, form fields win", body: body3, contentType: type3, wantName: "renamed.txt", wantType: "text/plain", wantBytes: []byte("hello")},
		{name: "multipart, file field without a filename", body: body4, contentType: type4, wantName: "attachment", wantType: "text/plain; charset=utf-8", wantBytes: []byte("bare file field")},
		{name: "base64 in file", body: `{"file":"` + b64 + `","filename":"photo.png","content_type":"image/png"}`, wantName: "photo.png", wantType: "image/png", wantBytes: png},
		{name: "base64 in data, sniffed", body: `{"data":"` + b64 + `"}`, wantName: "attachment", wantType: "image/png", wantBytes: png},
		{name: "url-safe base64 in file_data, in a container", body: `{"upload":{"file_data":"` + base64.RawURLEncoding.EncodeToString([]byte("??>>")) + `","fileName":"q.txt"}}`, wantName: "q.txt", wantType: "text/plain; charset=utf-8", wantBytes: []byte("??>>")},
		{name: "data URL", body: `{"file":"data:image/png;base64,` + b64 + `"}`, wantName: "attachment", wantType: "image/png", wantBytes: png},
	}
	for i, u := range uploads {
		t.Run(u.name, func(t *testing.T) {
			var opts []option
			if u.contentType != "" {
				opts = append(opts, withHeader("Content-Type", u.contentType))
			}
			r := c.call(t, http.MethodPost, path, u.body, opts...)
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
			d := r.data(t)
			id := itoa(i + 1)
			assert.Equal(t, id, d["id"])
			wantURL := c.url + path + "/" + id
			assert.Equal(t, wantURL, d["url"])
			assert.Equal(t, wantURL, r.Header.Get("Location"))
			assert.Equal(t, u.wantName, d["filename"])
			assert.Equal(t, u.wantType, d["content_type"])
			assert.Equal(t, float64(len(u.wantBytes)), d["size"])

			resp, err := http.Get(wantURL)
			require.NoError(t, err)
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, u.wantBytes, got)
			assert.Equal(t, u.wantType, resp.Header.Get("Content-Type"))
			assert.Contains(t, resp.Header.Get("Content-Disposition"), u.wantName)
		})
	}

	list := c.Attachments(rec)
	require.Len(t, list, len(uploads))
	assert.Equal(t, wav, list[0].Bytes)
	assert.Nil(t, c.Attachments("99"))

	r := c.call(t, http.MethodGet, path, nil)
	require.Equal(t, http.StatusOK, r.Status)
	assert.Len(t, r.items(t), len(uploads))

	// An attachment is only found under its own record.
	other := newRecord(t, c)
	r = c.call(t, http.MethodGet, "/api/records/"+other+"/attachments/1", nil)
	assert.Equal(t, http.StatusNotFound, r.Status)
}

func TestAttachmentBaseURL(t *testing.T) {
	c := start(t, Options{BaseURL: "https://crm.example.com/"})
	rec := newRecord(t, c)
	r := c.call(t, http.MethodPost, "/api/records/"+rec+"/attachments", `{"file":"aGk="}`)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	assert.Equal(t, "https://crm.example.com/api/records/"+rec+"/attachments/1", r.data(t)["url"])
}

func TestAttachmentErrors(t *testing.T) {
	c := start(t, Options{MaxAttachmentBytes: 1 << 10})
	rec := newRecord(t, c)
	path := "/api/records/" + rec + "/attachments"
	big, bigType := multipartBody(t, nil, "file", "big.bin", "", bytes.Repeat([]byte("x"), 2<<10))
	noFile, noFileType := multipartBody(t, map[string]string{"filename": "a.txt"}, "", "", "", nil)

	tests := []struct {
		name        string
		path        string
		body        any
		contentType string
		status      int
		contains    string
	}{
		{"bad base64", path, `{"file":"%%%"}`, "", 400, "file: not valid base64"},
		{"bad data URL", path, `{"file":"data:text/plain,hello"}`, "", 400, "file: a data: URL must be base64"},
		{"no file", path, `{"filename":"a.txt"}`, "", 400, "file: required"},
		{"multipart without a file", path, noFile, noFileType, 400, "file: required"},
		{"multipart without a boundary", path, []byte("x"), "multipart/form-data", 400, "boundary"},
		{"broken multipart", path, []byte("garbage"), "multipart/form-data; boundary=xyz", 400, "bad multipart data"},
		{"file is a number", path, `{"file":{"nested":true},"x":1}`, "", 400, "file: must be a string or number, not an object"},
		{"too large", path, big, bigType, 413, "larger than 1024 bytes"},
		{"too large as base64", path, `{"file":"` + strings.Repeat("A", 2<<10) + `"}`, "", 413, "larger than"},
		{"unknown record", "/api/records/9/attachments", `{"file":"aGk="}`, "", 404, "record 9 not found"},
		{"unknown attachment", path + "/5", nil, "", 404, "attachment 5 not found on record " + rec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := http.MethodPost
			if tt.body == nil {
				method = http.MethodGet
			}
			var opts []option
			if tt.contentType != "" {
				opts = append(opts, withHeader("Content-Type", tt.contentType))
			}
			r := c.call(t, method, tt.path, tt.body, opts...)
			assert.Equal(t, tt.status, r.Status, "%s", r.Body)
			assert.Contains(t, r.errorText(t), tt.contains)
		})
	}
	assert.Empty(t, c.Attachments(rec))
}
