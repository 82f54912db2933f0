package crm

import (
	"time"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/templating"
)

// Config describes one homegrown CRM: how to authenticate, how phone
// numbers are written, and the REST endpoints the flows call. It is decoded
// from YAML by the configs package, then Compile checks it and parses every
// template once.
type Config struct {
	// Auth is how every request authenticates. Zero value: no auth.
	Auth Auth `yaml:"auth" json:"auth"`
	// PhoneFormat is one of automatic, e164, us_local, us_local_standard,
	// international. Empty means automatic.
	PhoneFormat string `yaml:"phone_format" json:"phone_format"`
	// Timeout applies to every request; 1s to 10s. Zero means 5s.
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
	// MaxResponseBytes caps how much of a response body is read. Zero means 1 MiB.
	MaxResponseBytes int64 `yaml:"max_response_bytes" json:"max_response_bytes"`
	// AccountLookupURL points an agent at the account, with {ACCOUNT_ID}.
	AccountLookupURL string `yaml:"account_lookup_url" json:"account_lookup_url"`
	// RecordLookupURL points an agent at the record, with {RECORD_ID}.
	RecordLookupURL string `yaml:"record_lookup_url" json:"record_lookup_url"`
	// RecordMode is reuse_open (a record found by find_record is reused) or
	// always_create. Empty means reuse_open.
	RecordMode string `yaml:"record_mode" json:"record_mode"`
	// CommentHTML converts comment text to HTML (the "Convert text to HTML"
	// setting). False sends plain text.
	CommentHTML bool `yaml:"comment_html" json:"comment_html"`
	// Endpoints are the CRM's REST calls; any may be left out.
	Endpoints Endpoints `yaml:"endpoints" json:"endpoints"`

	// Filled by Compile.
	compiled      bool
	phone         templating.PhoneFormat
	timeout       time.Duration
	maxBytes      int64
	alwaysCreate  bool
	accountLookup *templating.URL
	recordLookup  *templating.URL
}

// Record modes.
const (
	RecordReuseOpen    = "reuse_open"
	RecordAlwaysCreate = "always_create"
)

// Endpoints lists the endpoints the flows know. A nil endpoint is not
// configured and the step that needs it is skipped (or, for the account and
// record, the flow reports ErrNotConfigured).
type Endpoints struct {
	FindAccount     *Endpoint       `yaml:"find_account" json:"find_account,omitempty"`
	FindAccountByID *Endpoint       `yaml:"find_account_by_id" json:"find_account_by_id,omitempty"`
	CreateAccount   *Endpoint       `yaml:"create_account" json:"create_account,omitempty"`
	FindRecord      *Endpoint       `yaml:"find_record" json:"find_record,omitempty"`
	CreateRecord    *Endpoint       `yaml:"create_record" json:"create_record,omitempty"`
	UpdateRecord    *Endpoint       `yaml:"update_record" json:"update_record,omitempty"`
	Comment         *Endpoint       `yaml:"comment" json:"comment,omitempty"`
	UploadFile      *UploadEndpoint `yaml:"upload_file" json:"upload_file,omitempty"`
}

// Endpoint names, as used in config paths, metrics and the timeline.
const (
	EndpointFindAccount     = "find_account"
	EndpointFindAccountByID = "find_account_by_id"
	EndpointCreateAccount   = "create_account"
	EndpointFindRecord      = "find_record"
	EndpointCreateRecord    = "create_record"
	EndpointUpdateRecord    = "update_record"
	EndpointComment         = "comment"
	EndpointUploadFile      = "upload_file"
)

// Endpoint is one configured REST call.
type Endpoint struct {
	// URL may hold variables, e.g. https://crm.example/api/records/{RECORD_ID}.
	URL string `yaml:"url" json:"url"`
	// Method is GET, POST, PUT or PATCH. Empty means GET for find endpoints
	// and POST for the others.
	Method string `yaml:"method" json:"method"`
	// Parameters go to the query string for GET and to the body otherwise.
	// A parameter whose value renders empty is left out.
	Parameters []Parameter `yaml:"parameters" json:"parameters"`
	// Body is json (default) or form, for POST, PUT and PATCH.
	Body string `yaml:"body" json:"body"`
	// Format is property (default: parameters are the top-level object) or
	// container (parameters nested under ContainerName).
	Format string `yaml:"format" json:"format"`
	// ContainerType is map ({name:{...}}) or array ({name:[{...}]}).
	ContainerType string `yaml:"container_type" json:"container_type"`
	// ContainerName is the key of the container.
	ContainerName string `yaml:"container_name" json:"container_name"`
	// ResponseLocation is a dotted path to the target object in the JSON
	// response, e.g. data.items.0. Empty means the whole body.
	ResponseLocation string `yaml:"response_location" json:"response_location"`
	// IDField is the path of the id inside the located object. Empty means id.
	IDField string `yaml:"id_field" json:"id_field"`

	// Filled by Compile.
	name      string
	method    string
	find      bool // rendered in templating.Search mode
	form      bool
	container containerKind
	url       *templating.URL
	params    []compiledParam
	location  []string
	idPath    []string
}

// Parameter is one name and its value template.
type Parameter struct {
	Name string `yaml:"name" json:"name"`
	// Value is text with {VARIABLES} or a function such as =CONCAT_OR(..).
	Value string `yaml:"value" json:"value"`
	// Type is how the value is written in a JSON body: string (default),
	// number or boolean.
	Type string `yaml:"type" json:"type"`
}

// UploadEndpoint is the upload-a-file endpoint with its own settings.
type UploadEndpoint struct {
	Endpoint `yaml:",inline" json:",inline"`
	// Type is base64 (the file is the {FILE_DATA} parameter, base64 encoded)
	// or multipart (the file is a form part named FileField).
	Type string `yaml:"type" json:"type"`
	// FileField names the multipart part holding the file. Empty means file.
	FileField string `yaml:"file_field" json:"file_field"`
	// Files lists which files are sent: call_recordings, chat_transcripts,
	// voicemails, photos, videos, session_metadata.
	Files []string `yaml:"files" json:"files"`
	// AttachmentType is id or url: how the response names the attachment.
	AttachmentType string `yaml:"attachment_type" json:"attachment_type"`
	// AttachmentIDLocation is the path of the attachment id in the response.
	AttachmentIDLocation string `yaml:"attachment_id_location" json:"attachment_id_location"`
	// AttachmentBuilderURL builds the download URL from {RECORD_ID} and {ATTACHMENT_ID}.
	AttachmentBuilderURL string `yaml:"attachment_builder_url" json:"attachment_builder_url"`
	// AttachmentURLLocation is the path of the download URL in the response.
	AttachmentURLLocation string `yaml:"attachment_url_location" json:"attachment_url_location"`
	// AddComment leaves a comment on the record after each upload.
	AddComment bool `yaml:"add_comment" json:"add_comment"`

	// Filled by Compile.
	multipart         bool
	files             map[string]bool
	attachmentPath    []string // the id or the URL, by AttachmentType
	attachmentBuilder *templating.URL
}

// Auth selects one of the spec's three methods.
type Auth struct {
	// Type is none (default), basic, header or oauth2.
	Type     string         `yaml:"type" json:"type"`
	Username string         `yaml:"username" json:"username,omitempty"`
	Password crmsync.Secret `yaml:"password" json:"password,omitempty"`
	Headers  []HeaderPair   `yaml:"headers" json:"headers,omitempty"`
	OAuth2   *OAuth2        `yaml:"oauth2" json:"oauth2,omitempty"`
}

// HeaderPair is one custom header sent with every request.
type HeaderPair struct {
	Key   string         `yaml:"key" json:"key"`
	Value crmsync.Secret `yaml:"value" json:"value"`
}

// OAuth2 configures OAuth 2.0 through golang.org/x/oauth2.
type OAuth2 struct {
	// Grant is client_credentials or authorization_code (then a refresh
	// token keeps the session alive). Empty means client_credentials.
	Grant        string         `yaml:"grant" json:"grant"`
	AuthURL      string         `yaml:"auth_url" json:"auth_url"`
	TokenURL     string         `yaml:"token_url" json:"token_url"`
	ClientID     string         `yaml:"client_id" json:"client_id"`
	ClientSecret crmsync.Secret `yaml:"client_secret" json:"client_secret"`
	Scopes       []string       `yaml:"scopes" json:"scopes"`
	State        string         `yaml:"state" json:"state"`
	// AccessType is sent as access_type on the authorization URL (offline
	// asks for a refresh token).
	AccessType string `yaml:"access_type" json:"access_type"`
	// RedirectURL is where the authorization server sends the code back.
	RedirectURL string `yaml:"redirect_url" json:"redirect_url"`
	// RefreshToken seeds the authorization_code grant; a rotated one is
	// kept in Redis and wins over this on restart.
	RefreshToken crmsync.Secret `yaml:"refresh_token" json:"refresh_token"`
	// RefreshBefore renews a token this long before it expires. Zero means 60s.
	RefreshBefore time.Duration `yaml:"refresh_before" json:"refresh_before"`
}
