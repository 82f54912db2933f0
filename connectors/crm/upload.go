package crm

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/crmsync/crmsync/templating"
)

// File is one file to upload to the record.
type File struct {
	Name        string
	ContentType string // "": application/octet-stream
	// Kind is the upload_file.files entry it belongs to, e.g. call_recordings.
	Kind string
	// Open is called once per attempt; the file is streamed, never held
	// whole in memory.
	Open func() (io.ReadCloser, error)
	// Size is the exact size in bytes, or 0 when unknown (the request is
	// then sent chunked).
	Size int64
}

// UploadResult names the uploaded attachment.
type UploadResult struct {
	AttachmentID string
	URL          string // the download URL, from the response or the builder
}

// Uploads reports whether files of this kind are configured for upload.
func (c *Client) Uploads(kind string) bool {
	up := c.cfg.Endpoints.UploadFile
	return up != nil && up.files[kind]
}

// Upload sends f to the record named by RECORD_ID in v, as a multipart
// part or base64 in the {FILE_DATA} parameter, then comments on the record
// when add_comment is set. When the upload succeeds and only the comment
// fails, the result is returned with the error.
func (c *Client) Upload(ctx context.Context, v *templating.Values, f File) (UploadResult, error) {
	up := c.cfg.Endpoints.UploadFile
	if up == nil {
		return UploadResult{}, fmt.Errorf("crm: %s: %w", EndpointUploadFile, ErrNotConfigured)
	}
	if !up.files[f.Kind] {
		return UploadResult{}, fmt.Errorf("crm: %s: file kind %q: %w", EndpointUploadFile, f.Kind, ErrNotConfigured)
	}
	if f.Open == nil {
		return UploadResult{}, errors.New("crm: upload_file: file has no Open")
	}
	o, err := renderUpload(up, v, &f)
	if err != nil {
		return UploadResult{}, err
	}
	key := idempotencyFor(ctx, up.name)
	if key != "" {
		// Every file of a session gets its own key.
		key += ":" + f.Kind + ":" + f.Name
		o.idem = key
	}
	resp, err := c.send(ctx, o)
	if err != nil {
		return UploadResult{}, err
	}
	res, err := c.attachment(up, v, resp)
	if err != nil {
		return UploadResult{}, err
	}
	if up.AddComment {
		cctx := ctx
		if key != "" {
			cctx = WithIdempotencyKey(ctx, key)
		}
		if err := c.Comment(cctx, v, uploadComment(f, res)); err != nil {
			return res, err
		}
	}
	return res, nil
}

// attachment reads the attachment id or URL from an upload response.
func (c *Client) attachment(up *UploadEndpoint, v *templating.Values, resp *response) (UploadResult, error) {
	root, err := c.parse(up.name, resp)
	if err != nil {
		return UploadResult{}, err
	}
	var res UploadResult
	val, ok := scalarString(lookup(root, up.attachmentPath))
	if !ok || val == "" {
		return UploadResult{}, &ResponseError{Endpoint: up.name, Reason: "no attachment " + up.AttachmentType + " at " + pathText(up.attachmentPath, nil)}
	}
	switch up.AttachmentType {
	case "id":
		res.AttachmentID = val
		v.Set(templating.AttachmentID, val)
		if up.attachmentBuilder != nil {
			if u, complete := up.attachmentBuilder.Execute(v, templating.Create); complete {
				res.URL = u
			}
		}
	case "url":
		res.URL = val
		if id, ok := idOf(target(lookup(root, up.location)), up.idPath); ok {
			res.AttachmentID = id
			v.Set(templating.AttachmentID, id)
		}
	}
	return res, nil
}

var fileLabels = map[string]string{
	FileCallRecordings:  "Call recording",
	FileChatTranscripts: "Chat transcript",
	FileVoicemails:      "Voicemail",
	FilePhotos:          "Photo",
	FileVideos:          "Video",
	FileSessionMetadata: "Session metadata file",
}

func uploadComment(f File, res UploadResult) string {
	label := fileLabels[f.Kind]
	if label == "" {
		label = "File"
	}
	where := res.URL
	if where == "" {
		where = f.Name
	}
	return label + " uploaded: " + where
}
