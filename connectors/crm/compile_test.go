package crm

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/templating"
)

func TestCompileDefaults(t *testing.T) {
	cfg := sampleConfig("https://crm.example")
	require.NoError(t, cfg.Compile())
	assert.Equal(t, DefaultTimeout, cfg.timeout)
	assert.Equal(t, int64(DefaultMaxResponseBytes), cfg.maxBytes)
	assert.Equal(t, templating.PhoneAutomatic, cfg.PhoneNumberFormat())
	assert.False(t, cfg.alwaysCreate)
	assert.Equal(t, "GET", cfg.Endpoints.FindAccount.method)
	assert.Equal(t, "POST", cfg.Endpoints.CreateAccount.method)
	assert.Equal(t, "PATCH", cfg.Endpoints.UpdateRecord.method)
	assert.Equal(t, []string{"id"}, cfg.Endpoints.CreateAccount.idPath)

	cfg.Timeout, cfg.PhoneFormat, cfg.RecordMode = 10*time.Second, "e164", RecordAlwaysCreate
	require.NoError(t, cfg.Compile())
	assert.Equal(t, 10*time.Second, cfg.timeout)
	assert.Equal(t, templating.PhoneE164, cfg.PhoneNumberFormat())
	assert.True(t, cfg.alwaysCreate)
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(c *Config)
		path   string
		reason string
	}{
		{"timeout too short", func(c *Config) { c.Timeout = 500 * time.Millisecond }, "timeout", "500ms is outside 1s to 10s"},
		{"timeout too long", func(c *Config) { c.Timeout = 11 * time.Second }, "timeout", "11s is outside 1s to 10s"},
		{"negative max response", func(c *Config) { c.MaxResponseBytes = -1 }, "max_response_bytes", "must not be negative"},
		{"phone format", func(c *Config) { c.PhoneFormat = "morse" }, "phone_format", `"morse"`},
		{"record mode", func(c *Config) { c.RecordMode = "sometimes" }, "record_mode", `"sometimes" is not reuse_open or always_create`},
		{"account lookup url", func(c *Config) { c.AccountLookupURL = "https://crm.example/{NOPE}" }, "account_lookup_url", "col "},
		{"record lookup url", func(c *Config) { c.RecordLookupURL = "crm.example/{RECORD_ID}" }, "record_lookup_url", ""},
		{"method", func(c *Config) { c.Endpoints.CreateAccount.Method = "DELETE" }, "endpoints.create_account.method", `"DELETE" is not GET, POST, PUT or PATCH`},
		{"body", func(c *Config) { c.Endpoints.CreateAccount.Body = "xml" }, "endpoints.create_account.body", `"xml" is not json or form`},
		{"format", func(c *Config) { c.Endpoints.CreateAccount.Format = "nested" }, "endpoints.create_account.format", `"nested" is not property or container`},
		{"container type missing", func(c *Config) {
			c.Endpoints.CreateAccount.Format, c.Endpoints.CreateAccount.ContainerName = "container", "account"
		}, "endpoints.create_account.container_type", "required for the container format"},
		{"container type", func(c *Config) {
			e := c.Endpoints.CreateAccount
			e.Format, e.ContainerType, e.ContainerName = "container", "set", "account"
		}, "endpoints.create_account.container_type", `"set" is not map or array`},
		{"container name", func(c *Config) {
			c.Endpoints.CreateAccount.Format, c.Endpoints.CreateAccount.ContainerType = "container", "map"
		}, "endpoints.create_account.container_name", "required for the container format"},
		{"container with form", func(c *Config) {
			e := c.Endpoints.CreateAccount
			e.Format, e.ContainerType, e.ContainerName, e.Body = "container", "map", "account", "form"
		}, "endpoints.create_account.format", "container needs a json body"},
		{"url missing", func(c *Config) { c.Endpoints.Comment.URL = "" }, "endpoints.comment.url", "required"},
		{"url syntax", func(c *Config) { c.Endpoints.Comment.URL = "https://crm.example/records/{RECORD_ID" }, "endpoints.comment.url", "col "},
		{"parameter syntax", func(c *Config) {
			c.Endpoints.FindAccount.Parameters = append(c.Endpoints.FindAccount.Parameters,
				Parameter{Name: "a", Value: "x"}, Parameter{Name: "b", Value: "(Phone:equals:{FOO})"})
		}, "endpoints.find_account.parameters[2].value", "col 15: "},
		{"parameter name", func(c *Config) {
			c.Endpoints.CreateAccount.Parameters[1].Name = ""
		}, "endpoints.create_account.parameters[1].name", "required"},
		{"parameter twice in json", func(c *Config) {
			c.Endpoints.CreateAccount.Parameters[1].Name = "name"
		}, "endpoints.create_account.parameters[1].name", `"name" appears twice in a json body`},
		{"parameter type", func(c *Config) {
			c.Endpoints.CreateAccount.Parameters[0].Type = "date"
		}, "endpoints.create_account.parameters[0].type", `"date" is not string, number or boolean`},
		{"response location", func(c *Config) { c.Endpoints.FindAccount.ResponseLocation = "data..0" }, "endpoints.find_account.response_location", `"data..0" has an empty segment`},
		{"find by id without variable", func(c *Config) {
			c.Endpoints.FindAccountByID.URL = "https://crm.example/api/accounts/me?id={ACCOUNT_ID}"
		}, "endpoints.find_account_by_id.url", "has no variable in its path"},
		{"record without account", func(c *Config) {
			c.Endpoints.FindAccount, c.Endpoints.CreateAccount = nil, nil
		}, "endpoints.create_record", "needs find_account or create_account"},
		{"auth type", func(c *Config) { c.Auth.Type = "kerberos" }, "auth.type", `"kerberos" is not none, basic, header or oauth2`},
		{"basic username", func(c *Config) { c.Auth = Auth{Type: AuthBasic, Password: "p"} }, "auth.username", "required for basic auth"},
		{"header pairs", func(c *Config) { c.Auth = Auth{Type: AuthHeader} }, "auth.headers", "at least one key and value pair"},
		{"header key empty", func(c *Config) {
			c.Auth = Auth{Type: AuthHeader, Headers: []HeaderPair{{Key: "X-A", Value: "1"}, {Value: "2"}}}
		}, "auth.headers[1].key", "required"},
		{"header key invalid", func(c *Config) {
			c.Auth = Auth{Type: AuthHeader, Headers: []HeaderPair{{Key: "X Api Key", Value: "1"}}}
		}, "auth.headers[0].key", `"X Api Key" is not a valid header name`},
		{"header value line break", func(c *Config) {
			c.Auth = Auth{Type: AuthHeader, Headers: []HeaderPair{{Key: "X-Key", Value: "a\r\nb"}}}
		}, "auth.headers[0].value", "must not contain a line break"},
		{"oauth2 missing", func(c *Config) { c.Auth = Auth{Type: AuthOAuth2} }, "auth.oauth2", "required for oauth2 auth"},
		{"oauth2 token url", func(c *Config) {
			c.Auth = Auth{Type: AuthOAuth2, OAuth2: &OAuth2{ClientID: "id", ClientSecret: "s"}}
		}, "auth.oauth2.token_url", "required"},
		{"oauth2 client id", func(c *Config) {
			c.Auth = Auth{Type: AuthOAuth2, OAuth2: &OAuth2{TokenURL: "https://crm.example/token", ClientSecret: "s"}}
		}, "auth.oauth2.client_id", "required"},
		{"oauth2 client secret", func(c *Config) {
			c.Auth = Auth{Type: AuthOAuth2, OAuth2: &OAuth2{TokenURL: "https://crm.example/token", ClientID: "id"}}
		}, "auth.oauth2.client_secret", "required"},
		{"oauth2 auth url", func(c *Config) {
			c.Auth = Auth{Type: AuthOAuth2, OAuth2: &OAuth2{Grant: GrantAuthorizationCode, TokenURL: "https://crm.example/token", ClientID: "id", ClientSecret: "s"}}
		}, "auth.oauth2.auth_url", "required for the authorization_code grant"},
		{"oauth2 grant", func(c *Config) {
			c.Auth = Auth{Type: AuthOAuth2, OAuth2: &OAuth2{Grant: "password", TokenURL: "https://crm.example/token", ClientID: "id", ClientSecret: "s"}}
		}, "auth.oauth2.grant", `"password" is not client_credentials or authorization_code`},
		{"oauth2 token url relative", func(c *Config) {
			c.Auth = Auth{Type: AuthOAuth2, OAuth2: &OAuth2{TokenURL: "/token", ClientID: "id", ClientSecret: "s"}}
		}, "auth.oauth2.token_url", "must be an absolute http or https URL"},
		{"upload type", func(c *Config) { c.Endpoints.UploadFile.Type = "ftp" }, "endpoints.upload_file.type", `"ftp" is not base64 or multipart`},
		{"upload type missing", func(c *Config) { c.Endpoints.UploadFile.Type = "" }, "endpoints.upload_file.type", "required: base64 or multipart"},
		{"upload base64 without file data", func(c *Config) { c.Endpoints.UploadFile.Type = "base64" }, "endpoints.upload_file.parameters", "needs a parameter with {FILE_DATA}"},
		{"upload files", func(c *Config) { c.Endpoints.UploadFile.Files = []string{"call_recordings", "faxes"} }, "endpoints.upload_file.files[1]", `"faxes" is not one of call_recordings, chat_transcripts`},
		{"upload no files", func(c *Config) { c.Endpoints.UploadFile.Files = nil }, "endpoints.upload_file.files", "choose at least one"},
		{"upload get", func(c *Config) { c.Endpoints.UploadFile.Method = "GET" }, "endpoints.upload_file.method", "GET cannot carry a file"},
		{"attachment type", func(c *Config) { c.Endpoints.UploadFile.AttachmentType = "name" }, "endpoints.upload_file.attachment_type", `"name" is not id or url`},
		{"attachment id location", func(c *Config) { c.Endpoints.UploadFile.AttachmentIDLocation = "" }, "endpoints.upload_file.attachment_id_location", "required for attachment_type id"},
		{"attachment url location", func(c *Config) { c.Endpoints.UploadFile.AttachmentType = "url" }, "endpoints.upload_file.attachment_url_location", "required for attachment_type url"},
		{"attachment builder", func(c *Config) {
			c.Endpoints.UploadFile.AttachmentBuilderURL = "https://crm.example/{RECORD_ID}/{ATTACHMENT}"
		}, "endpoints.upload_file.attachment_builder_url", "col "},
		{"upload comment without endpoint", func(c *Config) {
			c.Endpoints.UploadFile.AddComment, c.Endpoints.Comment = true, nil
		}, "endpoints.upload_file.add_comment", "needs the comment endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := sampleConfig("https://crm.example")
			tt.edit(cfg)
			err := cfg.Compile()
			require.Error(t, err)
			var errs ConfigErrors
			require.True(t, errors.As(err, &errs), "%T", err)
			require.Len(t, errs, 1, "%v", err)
			assert.Equal(t, tt.path, errs[0].Path)
			assert.Contains(t, errs[0].Reason, tt.reason)
			assert.Contains(t, err.Error(), tt.path+": ")

			_, nerr := New(cfg, Options{})
			assert.Error(t, nerr, "an uncompiled config is refused")
		})
	}
}

func TestCompileTemplateErrorColumn(t *testing.T) {
	cfg := sampleConfig("https://crm.example")
	cfg.Endpoints.FindAccount.Parameters = []Parameter{
		{Name: "a", Value: "x"}, {Name: "b", Value: "y"}, {Name: "q", Value: "(Email:equals:{FOO})"},
	}
	err := cfg.Compile()
	var ce *ConfigError
	require.True(t, errors.As(err, &ce))
	assert.Equal(t, "endpoints.find_account.parameters[2].value", ce.Path)
	assert.Regexp(t, `^col 15: .*FOO`, ce.Reason)
}

func TestCompileCollectsEveryError(t *testing.T) {
	cfg := sampleConfig("https://crm.example")
	cfg.Timeout = time.Minute
	cfg.Auth.Type = "basic"
	cfg.Endpoints.Comment.Method = "DELETE"
	err := cfg.Compile()
	var errs ConfigErrors
	require.True(t, errors.As(err, &errs))
	var paths []string
	for _, e := range errs {
		paths = append(paths, e.Path)
	}
	assert.Equal(t, []string{"timeout", "auth.username", "endpoints.comment.method"}, paths)
}
