package crm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/crmsync/crmsync/internal/httperr"
	"github.com/crmsync/crmsync/templating"
)

// Rendered is the request an endpoint would send, for checking a config.
type Rendered struct {
	Method string
	URL    string
	Header http.Header // secrets redacted
	Body   string      // secrets redacted; an upload shows <file data>
}

// Result is what an endpoint answered, for checking a config.
type Result struct {
	Status  int
	Located any    // the value at the response data location
	ID      string // the id there; for upload_file the attachment id or URL
	Body    string // the start of the body, secrets redacted
}

// checkFile stands in for a real file when upload_file is checked.
var checkFile = File{
	Name:        "crmsync-check.txt",
	ContentType: "text/plain; charset=utf-8",
	Size:        int64(len(checkFileText)),
	Open:        func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(checkFileText)), nil },
}

const checkFileText = "crmsync check\n"

func (c *Client) renderEndpoint(name string, v *templating.Values) (*Endpoint, *outgoing, error) {
	ep := c.endpoint(name)
	if ep == nil {
		return nil, nil, fmt.Errorf("crm: %s: %w", name, ErrNotConfigured)
	}
	if name == EndpointUploadFile {
		f := checkFile
		if up := c.cfg.Endpoints.UploadFile; len(up.Files) > 0 {
			f.Kind = up.Files[0]
		}
		o, err := renderUpload(c.cfg.Endpoints.UploadFile, v, &f)
		return ep, o, err
	}
	o, err := render(ep, v)
	return ep, o, err
}

// Render builds the request the named endpoint would send with v, without
// sending it. OAuth tokens are not fetched; the header shows where one goes.
func (c *Client) Render(endpoint string, v *templating.Values) (Rendered, error) {
	_, o, err := c.renderEndpoint(endpoint, v)
	if err != nil {
		return Rendered{}, err
	}
	req, err := c.newRequest(context.Background(), o, nil)
	if err != nil {
		return Rendered{}, err
	}
	body := string(o.body)
	if o.stream != nil {
		body = o.display
		if req.Body != nil {
			_ = req.Body.Close()
		}
	}
	h := req.Header.Clone()
	if c.tokens != nil {
		h.Set("Authorization", "Bearer "+redactedMark)
	}
	if a := h.Get("Authorization"); a != "" {
		scheme, _, _ := strings.Cut(a, " ")
		h.Set("Authorization", scheme+" "+redactedMark)
	}
	for k, vals := range h {
		for i := range vals {
			vals[i] = c.red.String(vals[i])
		}
		h[k] = vals
	}
	return Rendered{Method: o.method, URL: c.red.String(o.url), Header: h, Body: c.red.String(body)}, nil
}

// Send sends the named endpoint once with v and reports what came back;
// upload_file sends a small text file. No flow runs and v is not changed,
// except ATTACHMENT_ID by upload_file. A status outside 2xx returns the
// Result with an *HTTPError.
func (c *Client) Send(ctx context.Context, endpoint string, v *templating.Values) (Result, error) {
	ep, o, err := c.renderEndpoint(endpoint, v)
	if err != nil {
		return Result{}, err
	}
	resp, err := c.send(ctx, o)
	if err != nil {
		var he *HTTPError
		if errors.As(err, &he) && he.Endpoint == endpoint {
			return Result{Status: he.Status, Body: he.Body}, err
		}
		return Result{}, err
	}
	res := Result{Status: resp.status, Body: httperr.Cut(c.red.String(string(resp.body)), maxResultBody)}
	creates := endpoint == EndpointCreateAccount || endpoint == EndpointCreateRecord || endpoint == EndpointUploadFile
	if !creates && len(trimSpace(resp.body)) == 0 {
		return res, nil // found nothing, or an update that answers 204
	}
	if endpoint == EndpointUploadFile {
		up, err := c.attachment(c.cfg.Endpoints.UploadFile, v, resp)
		if err != nil {
			return res, err
		}
		res.ID = up.AttachmentID
		if res.ID == "" {
			res.ID = up.URL
		}
		located, _ := c.locate(ep, resp)
		res.Located = c.redactValue(located)
		return res, nil
	}
	located, err := c.locate(ep, resp)
	if err != nil {
		if endpoint == EndpointUpdateRecord || endpoint == EndpointComment {
			// Their answer is not read by the flows, JSON or not.
			return res, nil
		}
		return res, err
	}
	res.Located = c.redactValue(located)
	if present(located) {
		res.ID, _ = idOf(target(located), ep.idPath)
	}
	return res, nil
}

// redactValue copies a decoded JSON value with secrets redacted in every
// string, keys included.
func (c *Client) redactValue(v any) any {
	switch x := v.(type) {
	case string:
		return c.red.String(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = c.redactValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[c.red.String(k)] = c.redactValue(e)
		}
		return out
	}
	return v
}
