package crm

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/crmsync/crmsync/templating"
)

// Defaults and limits applied by Compile.
const (
	DefaultTimeout          = 5 * time.Second
	MinTimeout              = 1 * time.Second
	MaxTimeout              = 10 * time.Second
	DefaultMaxResponseBytes = 1 << 20
	DefaultRefreshBefore    = 60 * time.Second
)

// File kinds an upload endpoint may select.
const (
	FileCallRecordings  = "call_recordings"
	FileChatTranscripts = "chat_transcripts"
	FileVoicemails      = "voicemails"
	FilePhotos          = "photos"
	FileVideos          = "videos"
	FileSessionMetadata = "session_metadata"
)

var fileKinds = []string{FileCallRecordings, FileChatTranscripts, FileVoicemails, FilePhotos, FileVideos, FileSessionMetadata}

// Auth types.
const (
	AuthNone   = "none"
	AuthBasic  = "basic"
	AuthHeader = "header"
	AuthOAuth2 = "oauth2"
)

// OAuth 2.0 grants.
const (
	GrantClientCredentials = "client_credentials"
	GrantAuthorizationCode = "authorization_code"
)

type containerKind uint8

const (
	containerNone containerKind = iota
	containerMap
	containerArray
)

type paramType uint8

const (
	paramString paramType = iota
	paramNumber
	paramBoolean
)

type compiledParam struct {
	name string
	tmpl *templating.Template
	typ  paramType
}

// ConfigError is one problem found by Compile. Path is the YAML path below
// the crm section, e.g. endpoints.find_account.parameters[2].value.
type ConfigError struct {
	Path   string
	Reason string
}

func (e *ConfigError) Error() string { return e.Path + ": " + e.Reason }

// ConfigErrors is every problem Compile found, in config order.
type ConfigErrors []*ConfigError

func (es ConfigErrors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return "crm: config: " + strings.Join(s, "; ")
}

// Unwrap lets errors.As reach each *ConfigError.
func (es ConfigErrors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// PhoneNumberFormat is the parsed phone_format; valid after Compile. (A
// method cannot share the PhoneFormat field's name.)
func (c *Config) PhoneNumberFormat() templating.PhoneFormat { return c.phone }

// Compile checks the config, applies defaults and parses every template
// once. It returns nil or ConfigErrors. A Config may be compiled again after
// an edit.
func (c *Config) Compile() error {
	var errs ConfigErrors
	bad := func(path, format string, args ...any) {
		errs = append(errs, &ConfigError{Path: path, Reason: fmt.Sprintf(format, args...)})
	}
	c.compiled = false

	c.timeout = c.Timeout
	switch {
	case c.Timeout == 0:
		c.timeout = DefaultTimeout
	case c.Timeout < MinTimeout || c.Timeout > MaxTimeout:
		bad("timeout", "%s is outside %s to %s", c.Timeout, MinTimeout, MaxTimeout)
	}
	c.maxBytes = c.MaxResponseBytes
	switch {
	case c.MaxResponseBytes == 0:
		c.maxBytes = DefaultMaxResponseBytes
	case c.MaxResponseBytes < 0:
		bad("max_response_bytes", "must not be negative")
	}

	pf, err := templating.ParsePhoneFormat(c.PhoneFormat)
	if err != nil {
		bad("phone_format", "%s", strings.TrimPrefix(err.Error(), "templating: "))
	}
	c.phone = pf

	switch c.RecordMode {
	case "", RecordReuseOpen:
		c.alwaysCreate = false
	case RecordAlwaysCreate:
		c.alwaysCreate = true
	default:
		bad("record_mode", "%q is not %s or %s", c.RecordMode, RecordReuseOpen, RecordAlwaysCreate)
	}

	c.accountLookup, c.recordLookup = nil, nil
	if c.AccountLookupURL != "" {
		u, err := templating.ParseURL(c.AccountLookupURL)
		if err != nil {
			bad("account_lookup_url", "%s", templateReason(err))
		}
		c.accountLookup = u
	}
	if c.RecordLookupURL != "" {
		u, err := templating.ParseURL(c.RecordLookupURL)
		if err != nil {
			bad("record_lookup_url", "%s", templateReason(err))
		}
		c.recordLookup = u
	}

	c.compileAuth(bad)

	eps := &c.Endpoints
	for _, e := range []struct {
		name string
		ep   *Endpoint
	}{
		{EndpointFindAccount, eps.FindAccount},
		{EndpointFindAccountByID, eps.FindAccountByID},
		{EndpointCreateAccount, eps.CreateAccount},
		{EndpointFindRecord, eps.FindRecord},
		{EndpointCreateRecord, eps.CreateRecord},
		{EndpointUpdateRecord, eps.UpdateRecord},
		{EndpointComment, eps.Comment},
	} {
		if e.ep != nil {
			e.ep.compile(e.name, bad)
		}
	}
	if up := eps.UploadFile; up != nil {
		up.compileUpload(bad)
		if up.AddComment && eps.Comment == nil {
			bad("endpoints.upload_file.add_comment", "needs the comment endpoint")
		}
	}

	if ep := eps.FindAccountByID; ep != nil && ep.url != nil {
		// With every variable empty the URL still renders complete only when
		// no variable sits in its path: such a lookup could never be skipped
		// and would always find the same account.
		var empty templating.Values
		if _, complete := ep.url.Execute(&empty, templating.Search); complete {
			bad("endpoints.find_account_by_id.url", "has no variable in its path, e.g. {ACCOUNT_ID}")
		}
	}
	if eps.CreateRecord != nil && eps.CreateAccount == nil && eps.FindAccount == nil {
		bad("endpoints.create_record", "needs find_account or create_account: records belong to accounts")
	}

	if len(errs) > 0 {
		return errs
	}
	c.compiled = true
	return nil
}

// templateReason words a template parse error as "col N: what".
func templateReason(err error) string {
	var se *templating.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("col %d: %s", se.Col, se.Msg)
	}
	return err.Error()
}

func isFindEndpoint(name string) bool {
	switch name {
	case EndpointFindAccount, EndpointFindAccountByID, EndpointFindRecord:
		return true
	}
	return false
}

func (ep *Endpoint) compile(name string, bad func(string, string, ...any)) {
	p := "endpoints." + name
	ep.name = name
	ep.find = isFindEndpoint(name)
	ep.url, ep.params = nil, nil

	switch {
	case ep.URL == "":
		bad(p+".url", "required")
	default:
		u, err := templating.ParseURL(ep.URL)
		if err != nil {
			bad(p+".url", "%s", templateReason(err))
		}
		ep.url = u
	}

	ep.method = strings.ToUpper(ep.Method)
	switch ep.method {
	case "":
		ep.method = "POST"
		if ep.find {
			ep.method = "GET"
		}
	case "GET", "POST", "PUT", "PATCH":
	default:
		bad(p+".method", "%q is not GET, POST, PUT or PATCH", ep.Method)
	}

	switch ep.Body {
	case "", "json":
		ep.form = false
	case "form":
		ep.form = true
	default:
		bad(p+".body", "%q is not json or form", ep.Body)
	}

	ep.container = containerNone
	switch ep.Format {
	case "", "property":
	case "container":
		switch ep.ContainerType {
		case "map":
			ep.container = containerMap
		case "array":
			ep.container = containerArray
		case "":
			bad(p+".container_type", "required for the container format: map or array")
		default:
			bad(p+".container_type", "%q is not map or array", ep.ContainerType)
		}
		if ep.ContainerName == "" {
			bad(p+".container_name", "required for the container format")
		}
		if ep.form && ep.method != "GET" {
			bad(p+".format", "container needs a json body")
		}
	default:
		bad(p+".format", "%q is not property or container", ep.Format)
	}

	ep.location = compilePath(p+".response_location", ep.ResponseLocation, bad)
	ep.idPath = compilePath(p+".id_field", ep.IDField, bad)
	if len(ep.idPath) == 0 {
		ep.idPath = []string{"id"}
	}

	jsonBody := ep.method != "GET" && !ep.form
	seen := make(map[string]bool, len(ep.Parameters))
	for i, prm := range ep.Parameters {
		pp := fmt.Sprintf("%s.parameters[%d]", p, i)
		cp := compiledParam{name: prm.Name}
		if prm.Name == "" {
			bad(pp+".name", "required")
		} else if jsonBody && seen[prm.Name] {
			bad(pp+".name", "%q appears twice in a json body", prm.Name)
		}
		seen[prm.Name] = true
		t, err := templating.Parse(prm.Value)
		if err != nil {
			bad(pp+".value", "%s", templateReason(err))
		}
		cp.tmpl = t
		switch prm.Type {
		case "", "string":
		case "number":
			cp.typ = paramNumber
		case "boolean":
			cp.typ = paramBoolean
		default:
			bad(pp+".type", "%q is not string, number or boolean", prm.Type)
		}
		ep.params = append(ep.params, cp)
	}
}

func (up *UploadEndpoint) compileUpload(bad func(string, string, ...any)) {
	const p = "endpoints.upload_file"
	up.Endpoint.compile(EndpointUploadFile, bad)
	if up.method == "GET" {
		bad(p+".method", "GET cannot carry a file")
	}

	up.multipart = false
	switch up.Type {
	case "base64":
		// The file travels as the {FILE_DATA} parameter: one must use it.
		uses := false
		for _, cp := range up.params {
			if cp.tmpl != nil && slices.Contains(cp.tmpl.Vars(), templating.FileData) {
				uses = true
			}
		}
		if !uses {
			bad(p+".parameters", "a base64 upload needs a parameter with {FILE_DATA}")
		}
	case "multipart":
		up.multipart = true
	case "":
		bad(p+".type", "required: base64 or multipart")
	default:
		bad(p+".type", "%q is not base64 or multipart", up.Type)
	}

	up.files = make(map[string]bool, len(up.Files))
	for i, f := range up.Files {
		known := false
		for _, k := range fileKinds {
			known = known || f == k
		}
		if !known {
			bad(fmt.Sprintf("%s.files[%d]", p, i), "%q is not one of %s", f, strings.Join(fileKinds, ", "))
		}
		up.files[f] = true
	}
	if len(up.Files) == 0 {
		bad(p+".files", "choose at least one of %s", strings.Join(fileKinds, ", "))
	}

	up.attachmentPath, up.attachmentBuilder = nil, nil
	switch up.AttachmentType {
	case "id":
		if up.AttachmentIDLocation == "" {
			bad(p+".attachment_id_location", "required for attachment_type id")
		}
		up.attachmentPath = compilePath(p+".attachment_id_location", up.AttachmentIDLocation, bad)
		if up.AttachmentBuilderURL != "" {
			u, err := templating.ParseURL(up.AttachmentBuilderURL)
			if err != nil {
				bad(p+".attachment_builder_url", "%s", templateReason(err))
			}
			up.attachmentBuilder = u
		}
	case "url":
		if up.AttachmentURLLocation == "" {
			bad(p+".attachment_url_location", "required for attachment_type url")
		}
		up.attachmentPath = compilePath(p+".attachment_url_location", up.AttachmentURLLocation, bad)
	case "":
		bad(p+".attachment_type", "required: id or url")
	default:
		bad(p+".attachment_type", "%q is not id or url", up.AttachmentType)
	}
}

func (c *Config) compileAuth(bad func(string, string, ...any)) {
	a := &c.Auth
	switch a.Type {
	case "", AuthNone:
	case AuthBasic:
		if a.Username == "" {
			bad("auth.username", "required for basic auth")
		}
		if strings.Contains(a.Username, ":") {
			bad("auth.username", "must not contain a colon")
		}
	case AuthHeader:
		if len(a.Headers) == 0 {
			bad("auth.headers", "at least one key and value pair is required for header auth")
		}
		for i, h := range a.Headers {
			p := fmt.Sprintf("auth.headers[%d]", i)
			switch {
			case h.Key == "":
				bad(p+".key", "required")
			case !validHeaderName(h.Key):
				bad(p+".key", "%q is not a valid header name", h.Key)
			}
			if strings.ContainsAny(h.Value.Reveal(), "\r\n\x00") {
				bad(p+".value", "must not contain a line break or NUL")
			}
		}
	case AuthOAuth2:
		o := a.OAuth2
		if o == nil {
			bad("auth.oauth2", "required for oauth2 auth")
			return
		}
		switch o.Grant {
		case "", GrantClientCredentials:
		case GrantAuthorizationCode:
			if o.AuthURL == "" {
				bad("auth.oauth2.auth_url", "required for the authorization_code grant")
			} else if !validAbsURL(o.AuthURL) {
				bad("auth.oauth2.auth_url", "must be an absolute http or https URL")
			}
		default:
			bad("auth.oauth2.grant", "%q is not client_credentials or authorization_code", o.Grant)
		}
		if o.TokenURL == "" {
			bad("auth.oauth2.token_url", "required")
		} else if !validAbsURL(o.TokenURL) {
			bad("auth.oauth2.token_url", "must be an absolute http or https URL")
		}
		if o.ClientID == "" {
			bad("auth.oauth2.client_id", "required")
		}
		if o.ClientSecret.IsZero() {
			bad("auth.oauth2.client_secret", "required")
		}
		if o.RedirectURL != "" && !validAbsURL(o.RedirectURL) {
			bad("auth.oauth2.redirect_url", "must be an absolute http or https URL")
		}
		if o.RefreshBefore < 0 {
			bad("auth.oauth2.refresh_before", "must not be negative")
		}
	default:
		bad("auth.type", "%q is not none, basic, header or oauth2", a.Type)
	}
}

// compilePath splits a dotted response path. Empty means the whole value.
func compilePath(path, s string, bad func(string, string, ...any)) []string {
	if s == "" {
		return nil
	}
	segs := strings.Split(s, ".")
	for _, seg := range segs {
		if seg == "" {
			bad(path, "%q has an empty segment", s)
			return nil
		}
	}
	return segs
}

func validAbsURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0:
		default:
			return false
		}
	}
	return true
}
