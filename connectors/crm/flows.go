package crm

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/crmsync/crmsync/templating"
)

// AccountResult is the account the flow found or created.
type AccountResult struct {
	ID      string
	Created bool
	URL     string // the account lookup URL; "" when not configured
}

// RecordResult is the record the flow found or created.
type RecordResult struct {
	ID      string
	Created bool
	Reused  bool // an existing record found by find_record
	URL     string
}

// FindOrCreateAccount finds the account by id (when that endpoint is
// configured and ACCOUNT_ID is known), then by query, and creates it when
// neither finds one. It sets ACCOUNT_ID in v.
func (c *Client) FindOrCreateAccount(ctx context.Context, v *templating.Values) (AccountResult, error) {
	eps := &c.cfg.Endpoints
	if eps.FindAccountByID == nil && eps.FindAccount == nil && eps.CreateAccount == nil {
		return AccountResult{}, fmt.Errorf("crm: account: %w", ErrNotConfigured)
	}
	found := func(id string, created bool) (AccountResult, error) {
		v.Set(templating.AccountID, id)
		return AccountResult{ID: id, Created: created, URL: c.AccountURL(v)}, nil
	}

	if ep := eps.FindAccountByID; ep != nil {
		id, ok, err := c.find(ctx, ep, v)
		var he *HTTPError
		switch {
		case errors.Is(err, ErrIncompleteURL), errors.As(err, &he) && he.Status == http.StatusNotFound:
			// ACCOUNT_ID unknown, or not in the CRM: look it up by query.
		case err != nil:
			return AccountResult{}, err
		case ok:
			return found(id, false)
		}
	}
	if ep := eps.FindAccount; ep != nil {
		id, ok, err := c.find(ctx, ep, v)
		if err != nil {
			return AccountResult{}, err
		}
		if ok {
			return found(id, false)
		}
	}
	if eps.CreateAccount == nil {
		return AccountResult{}, fmt.Errorf("crm: no account found: %s: %w", EndpointCreateAccount, ErrNotConfigured)
	}
	id, err := c.create(ctx, eps.CreateAccount, v)
	if err != nil {
		return AccountResult{}, err
	}
	return found(id, true)
}

// FindOrCreateRecord finds or creates the record of the account named by
// ACCOUNT_ID in v, and sets RECORD_ID. With record_mode reuse_open a record
// found by find_record is reused. With always_create a record is created,
// except when mayHaveCreated says an earlier attempt may have created one
// before it could record it: then that record is looked for first.
func (c *Client) FindOrCreateRecord(ctx context.Context, v *templating.Values, mayHaveCreated bool) (RecordResult, error) {
	eps := &c.cfg.Endpoints
	if eps.FindRecord == nil && eps.CreateRecord == nil {
		return RecordResult{}, fmt.Errorf("crm: record: %w", ErrNotConfigured)
	}
	if v.Get(templating.AccountID, templating.Create) == "" {
		return RecordResult{}, errors.New("crm: record: account id unknown: find or create the account first")
	}
	if ep := eps.FindRecord; ep != nil && (!c.cfg.alwaysCreate || mayHaveCreated) {
		id, ok, err := c.find(ctx, ep, v)
		if err != nil {
			return RecordResult{}, err
		}
		if ok {
			v.Set(templating.RecordID, id)
			return RecordResult{ID: id, Reused: true, URL: c.RecordURL(v)}, nil
		}
	}
	return c.CreateRecord(ctx, v)
}

// CreateRecord creates a record for ACCOUNT_ID without looking for one
// first: for an account this flow has just created, which has none to
// find. It sets RECORD_ID in v.
func (c *Client) CreateRecord(ctx context.Context, v *templating.Values) (RecordResult, error) {
	ep := c.cfg.Endpoints.CreateRecord
	if ep == nil {
		return RecordResult{}, fmt.Errorf("crm: no record found: %s: %w", EndpointCreateRecord, ErrNotConfigured)
	}
	if v.Get(templating.AccountID, templating.Create) == "" {
		return RecordResult{}, errors.New("crm: record: account id unknown: find or create the account first")
	}
	id, err := c.create(ctx, ep, v)
	if err != nil {
		return RecordResult{}, err
	}
	v.Set(templating.RecordID, id)
	return RecordResult{ID: id, Created: true, URL: c.RecordURL(v)}, nil
}

// UpdateRecord sends the update_record endpoint.
func (c *Client) UpdateRecord(ctx context.Context, v *templating.Values) error {
	ep := c.cfg.Endpoints.UpdateRecord
	if ep == nil {
		return fmt.Errorf("crm: %s: %w", EndpointUpdateRecord, ErrNotConfigured)
	}
	o, err := render(ep, v)
	if err != nil {
		return err
	}
	_, err = c.send(ctx, o)
	return err
}

// Comment adds text as a comment to the record: COMMENT_BODY is text, as
// HTML when comment_html is set, for this call only.
func (c *Client) Comment(ctx context.Context, v *templating.Values, text string) error {
	ep := c.cfg.Endpoints.Comment
	if ep == nil {
		return fmt.Errorf("crm: %s: %w", EndpointComment, ErrNotConfigured)
	}
	if c.cfg.CommentHTML {
		text = templating.TextToHTML(text)
	}
	vv := *v
	vv.Set(templating.CommentBody, text)
	o, err := render(ep, &vv)
	if err != nil {
		return err
	}
	o.idem = idempotencyFor(ctx, ep.name)
	_, err = c.send(ctx, o)
	return err
}

// Has reports whether the named endpoint is configured.
func (c *Client) Has(endpoint string) bool {
	return c.endpoint(endpoint) != nil
}

func (c *Client) endpoint(name string) *Endpoint {
	eps := &c.cfg.Endpoints
	var ep *Endpoint
	switch name {
	case EndpointFindAccount:
		ep = eps.FindAccount
	case EndpointFindAccountByID:
		ep = eps.FindAccountByID
	case EndpointCreateAccount:
		ep = eps.CreateAccount
	case EndpointFindRecord:
		ep = eps.FindRecord
	case EndpointCreateRecord:
		ep = eps.CreateRecord
	case EndpointUpdateRecord:
		ep = eps.UpdateRecord
	case EndpointComment:
		ep = eps.Comment
	case EndpointUploadFile:
		if eps.UploadFile != nil {
			ep = &eps.UploadFile.Endpoint
		}
	}
	return ep
}

// AccountURL is the account lookup URL for ACCOUNT_ID in v, or "" when it
// is not configured or the id is unknown.
func (c *Client) AccountURL(v *templating.Values) string {
	return lookupURL(c.cfg.accountLookup, v)
}

// RecordURL is the record lookup URL for RECORD_ID in v, or "".
func (c *Client) RecordURL(v *templating.Values) string {
	return lookupURL(c.cfg.recordLookup, v)
}

func lookupURL(u *templating.URL, v *templating.Values) string {
	if u == nil {
		return ""
	}
	s, complete := u.Execute(v, templating.Create)
	if !complete {
		return ""
	}
	return s
}

// find sends a find endpoint. Nothing at the data location is not found,
// not an error.
func (c *Client) find(ctx context.Context, ep *Endpoint, v *templating.Values) (string, bool, error) {
	if noCriteria(ep, v) {
		// Nothing known to search by (say, an end event whose session
		// brought no phone or email): a search would match everything or
		// be refused, so nothing is found.
		return "", false, nil
	}
	o, err := render(ep, v)
	if err != nil {
		return "", false, err
	}
	resp, err := c.send(ctx, o)
	if err != nil {
		return "", false, err
	}
	if len(trimSpace(resp.body)) == 0 {
		return "", false, nil
	}
	located, err := c.locate(ep, resp)
	if err != nil || !present(located) {
		return "", false, err
	}
	id, ok := idOf(target(located), ep.idPath)
	if !ok {
		return "", false, &ResponseError{Endpoint: ep.name, Reason: "no id at " + pathText(ep.location, ep.idPath)}
	}
	return id, true, nil
}

// create sends a create endpoint and returns the new id.
func (c *Client) create(ctx context.Context, ep *Endpoint, v *templating.Values) (string, error) {
	o, err := render(ep, v)
	if err != nil {
		return "", err
	}
	o.idem = idempotencyFor(ctx, ep.name)
	resp, err := c.send(ctx, o)
	if err != nil {
		return "", err
	}
	located, err := c.locate(ep, resp)
	if err != nil {
		return "", err
	}
	if !present(located) {
		return "", &ResponseError{Endpoint: ep.name, Reason: "nothing at " + pathText(ep.location, nil)}
	}
	id, ok := idOf(target(located), ep.idPath)
	if !ok {
		return "", &ResponseError{Endpoint: ep.name, Reason: "no id at " + pathText(ep.location, ep.idPath)}
	}
	return id, nil
}

// locate parses a response and returns the value at the endpoint's data
// location (nil when missing).
func (c *Client) locate(ep *Endpoint, resp *response) (any, error) {
	root, err := c.parse(ep.name, resp)
	if err != nil {
		return nil, err
	}
	return lookup(root, ep.location), nil
}

func (c *Client) parse(endpoint string, resp *response) (any, error) {
	if resp.large {
		return nil, &ResponseError{Endpoint: endpoint, Reason: fmt.Sprintf("body larger than max_response_bytes (%d)", c.cfg.maxBytes)}
	}
	root, err := decodeJSON(resp.body)
	if err != nil {
		return nil, &ResponseError{Endpoint: endpoint, Reason: "not JSON: " + c.red.Error(err)}
	}
	return root, nil
}

func pathText(location, id []string) string {
	s := ""
	for _, p := range [][]string{location, id} {
		for _, seg := range p {
			if s != "" {
				s += "."
			}
			s += seg
		}
	}
	if s == "" {
		return "the top level"
	}
	return s
}

func trimSpace(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	for j > i && (b[j-1] == ' ' || b[j-1] == '\t' || b[j-1] == '\n' || b[j-1] == '\r') {
		j--
	}
	return b[i:j]
}

// noCriteria reports whether a find has nothing of the session to search
// by: its URL holds no variable and every parameter that holds one renders
// empty.
func noCriteria(ep *Endpoint, v *templating.Values) bool {
	if len(ep.url.Vars()) > 0 {
		return false
	}
	withVars := 0
	for _, p := range ep.params {
		if len(p.tmpl.Vars()) == 0 {
			continue
		}
		withVars++
		if p.tmpl.Execute(v, templating.Search) != "" {
			return false
		}
	}
	return withVars > 0
}
