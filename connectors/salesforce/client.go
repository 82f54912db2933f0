package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/httperr"
)

// RoutingType says whether a conversation is new or being transferred.
type RoutingType string

const (
	Initial  RoutingType = "Initial"
	Transfer RoutingType = "Transfer"
)

// Valid reports whether t is one of the two routing types.
func (t RoutingType) Valid() bool { return t == Initial || t == Transfer }

// RouteRequest is one conversation to route. With neither Flow nor
// QueueID, Salesforce routes by the channel's own setting.
type RouteRequest struct {
	// ConversationIdentifier is Salesforce's id of the conversation.
	ConversationIdentifier string
	RoutingType            RoutingType
	// Flow routes by an Omni-Channel flow, with a fallback queue.
	Flow *Flow
	// QueueID routes to one queue.
	QueueID string
}

// Flow is flow-based routing.
type Flow struct {
	// FlowID is the flow's FlowDefinitionView record id.
	FlowID string
	// QueueID is the fallback queue's id.
	QueueID string
	// RoutingAttributes map channel variable names to values, for flows
	// that take custom parameters. Optional.
	RoutingAttributes map[string]string
}

// Limits on what a request may carry.
const (
	MaxAttributes     = 64
	MaxAttributeKey   = 255
	MaxAttributeValue = 4096
	MaxConversationID = 255
)

// Result is a call Salesforce took.
type Result struct {
	// RequestID is the RequestId the call carried.
	RequestID string
	// Status is the 2xx status answered.
	Status int
}

// Client calls one org's route API. It is safe for concurrent use.
type Client struct {
	endpoint string
	cfg      Config
	sign     *signer
}

// New checks cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	s, err := cfg.check()
	if err != nil {
		return nil, err
	}
	return &Client{
		endpoint: s.endpoint,
		cfg:      s.cfg,
		sign: &signer{
			key:      s.key,
			claims:   Claims{Issuer: s.cfg.ClientID, Subject: s.cfg.Subject, Audience: s.cfg.Audience},
			lifetime: s.cfg.TokenLifetime,
			now:      s.cfg.Now,
		},
	}, nil
}

// Endpoint is the route API's URL.
func (c *Client) Endpoint() string { return c.endpoint }

// Timeout is how long one call may take.
func (c *Client) Timeout() time.Duration { return c.cfg.Timeout }

// routePayload is the route request's JSON, as the vendor names it.
type routePayload struct {
	ConversationIdentifier string       `json:"conversationIdentifier"`
	RoutingType            RoutingType  `json:"routingType"`
	RoutingInfo            *routingInfo `json:"routingInfo,omitempty"`
}

type routingInfo struct {
	Flow              *flowInfo         `json:"flow,omitempty"`
	QueueID           string            `json:"queueId,omitempty"`
	RoutingAttributes map[string]string `json:"routingAttributes,omitempty"`
}

type flowInfo struct {
	FlowID  string `json:"flowId"`
	QueueID string `json:"queueId"`
}

// Check validates r; errors name the field as the vendor's JSON does.
func (r RouteRequest) Check() error {
	if err := checkConversation(r.ConversationIdentifier); err != nil {
		return err
	}
	if !r.RoutingType.Valid() {
		return crmsync.Errorf(crmsync.EINVALID, "routingType", "must be %q or %q", Initial, Transfer)
	}
	if r.Flow != nil && r.QueueID != "" {
		return crmsync.Errorf(crmsync.EINVALID, "routingInfo", "give a flow or a queue id, not both")
	}
	if r.QueueID != "" {
		if err := checkRecordID("routingInfo.queueId", r.QueueID); err != nil {
			return err
		}
	}
	if f := r.Flow; f != nil {
		if err := checkRecordID("routingInfo.flow.flowId", f.FlowID); err != nil {
			return err
		}
		if err := checkRecordID("routingInfo.flow.queueId", f.QueueID); err != nil {
			return err
		}
		if err := CheckAttributes("routingInfo.routingAttributes", f.RoutingAttributes); err != nil {
			return err
		}
	}
	return nil
}

func (r RouteRequest) payload() routePayload {
	p := routePayload{ConversationIdentifier: r.ConversationIdentifier, RoutingType: r.RoutingType}
	switch {
	case r.Flow != nil:
		p.RoutingInfo = &routingInfo{
			Flow:              &flowInfo{FlowID: r.Flow.FlowID, QueueID: r.Flow.QueueID},
			RoutingAttributes: r.Flow.RoutingAttributes,
		}
	case r.QueueID != "":
		p.RoutingInfo = &routingInfo{QueueID: r.QueueID}
	}
	return p
}

// Route asks Salesforce to route a conversation (POST route). The JSON
// payload goes in a multipart/form-data part named "json", as the
// Interaction Service's multipart APIs take it. *HTTPError and
// *TransportError are the failures; Retryable sorts them.
func (c *Client) Route(ctx context.Context, r RouteRequest) (Result, error) {
	if err := r.Check(); err != nil {
		return Result{}, err
	}
	js, err := json.Marshal(r.payload())
	if err != nil {
		return Result{}, fmt.Errorf("salesforce: encode route request: %w", err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="json"`)
	h.Set("Content-Type", "application/json")
	part, err := mw.CreatePart(h)
	if err != nil {
		return Result{}, fmt.Errorf("salesforce: build route request: %w", err)
	}
	_, _ = part.Write(js)
	if err := mw.Close(); err != nil {
		return Result{}, fmt.Errorf("salesforce: build route request: %w", err)
	}
	return c.do(ctx, OpRoute, http.MethodPost, mw.FormDataContentType(), body.Bytes())
}

// DeleteRoute deletes the pending routing of a conversation (DELETE
// route), one that no rep took. A 404 (IsNotFound) means none was left.
func (c *Client) DeleteRoute(ctx context.Context, conversationIdentifier string) (Result, error) {
	if err := checkConversation(conversationIdentifier); err != nil {
		return Result{}, err
	}
	js, err := json.Marshal(struct {
		ConversationIdentifier string `json:"conversationIdentifier"`
	}{conversationIdentifier})
	if err != nil {
		return Result{}, fmt.Errorf("salesforce: encode delete request: %w", err)
	}
	return c.do(ctx, OpDeleteRoute, http.MethodDelete, "application/json", js)
}

// do sends one call with the spec's headers and a fresh RequestId.
func (c *Client) do(ctx context.Context, op, method, contentType string, body []byte) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	tok, err := c.sign.get()
	if err != nil {
		return Result{}, err
	}
	reqID := uuid.NewString()
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return Result{}, fmt.Errorf("salesforce: %s: build request: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "crmsync")
	// Set as the vendor spells them; Header.Set would send "Orgid".
	req.Header["OrgId"] = []string{c.cfg.OrgID}
	req.Header["AuthorizationContext"] = []string{c.cfg.AuthorizationContext}
	req.Header["RequestId"] = []string{reqID}

	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return Result{}, c.transportError(op, reqID, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	if err != nil {
		return Result{}, c.transportError(op, reqID, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Result{}, &HTTPError{
			Op:         op,
			Status:     resp.StatusCode,
			RequestID:  reqID,
			RetryAfter: httperr.RetryAfter(resp.Header.Get("Retry-After"), time.Now()),
			Body:       httperr.Cut(c.redact(string(raw)), 512),
		}
	}
	return Result{RequestID: reqID, Status: resp.StatusCode}, nil
}

func (c *Client) transportError(op, reqID string, err error) error {
	var ne net.Error
	timeout := errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
	return &TransportError{Op: op, RequestID: reqID, Err: httperr.Redacted(c.redact(err.Error()), err), Timeout: timeout}
}

// redact hides the token in text bound for an error: a server or proxy
// that echoes the request's headers would show it.
func (c *Client) redact(s string) string {
	if t := c.sign.current(); t != "" {
		s = strings.ReplaceAll(s, t, "[REDACTED]")
		// The signature alone is what makes the token usable.
		if i := strings.LastIndexByte(t, '.'); i >= 0 && len(t)-i > 16 {
			s = strings.ReplaceAll(s, t[i+1:], "[REDACTED]")
		}
	}
	return s
}

// checkConversation wants a conversation id that fits in a header-free
// JSON string and a log line.
func checkConversation(s string) error {
	return checkText("conversationIdentifier", s, MaxConversationID)
}

// checkRecordID wants a Salesforce record id: 15 or 18 letters and
// digits.
func checkRecordID(field, s string) error {
	if s == "" {
		return crmsync.Errorf(crmsync.EINVALID, field, "is required")
	}
	if (len(s) != 15 && len(s) != 18) || !alnum(s) {
		return crmsync.Errorf(crmsync.EINVALID, field, "must be a Salesforce record id (15 or 18 letters and digits)")
	}
	return nil
}

// CheckAttributes validates routing attributes: at most MaxAttributes,
// names non-empty, names and values without control characters and
// within their limits. field names the map in errors.
func CheckAttributes(field string, attrs map[string]string) error {
	if len(attrs) > MaxAttributes {
		return crmsync.Errorf(crmsync.EINVALID, field, "has %d entries, more than %d", len(attrs), MaxAttributes)
	}
	for k, v := range attrs {
		switch {
		case strings.TrimSpace(k) == "":
			return crmsync.Errorf(crmsync.EINVALID, field, "holds an empty name")
		case len(k) > MaxAttributeKey:
			return crmsync.Errorf(crmsync.EINVALID, field, "holds a name longer than %d bytes", MaxAttributeKey)
		case hasControl(k):
			return crmsync.Errorf(crmsync.EINVALID, field, "holds a name with a control character")
		case len(v) > MaxAttributeValue:
			return crmsync.Errorf(crmsync.EINVALID, field+"."+httperr.Cut(k, 40), "is longer than %d bytes", MaxAttributeValue)
		case hasControl(v):
			return crmsync.Errorf(crmsync.EINVALID, field+"."+httperr.Cut(k, 40), "holds a control character")
		}
	}
	return nil
}
