package configs

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDemoLoads(t *testing.T) {
	cfg, err := Parse("demo.yaml", Demo, env(nil))
	require.NoError(t, err)
	assert.True(t, cfg.SampleCRM.Enabled)
	assert.True(t, cfg.Redis.URL.IsZero(), "the demo runs an in-process Redis")
	assert.Equal(t, "127.0.0.1:8080", cfg.Server.Listen)
	assert.Equal(t, "http://127.0.0.1:8080/sample-crm/api/accounts", cfg.CRM.Endpoints.FindAccount.URL)
	assert.Equal(t, 5*time.Second, cfg.CRM.Timeout)

	cfg, err = Parse("demo.yaml", Demo, env(map[string]string{"CRMSYNC_LISTEN": "127.0.0.1:9999", "REDIS_URL": "redis://127.0.0.1:6379/0"}))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:9999", cfg.Server.Listen)
	assert.Equal(t, "redis://127.0.0.1:6379/0", cfg.Redis.URL.Reveal())
	assert.Equal(t, "http://127.0.0.1:9999/sample-crm/api/accounts", cfg.CRM.Endpoints.FindAccount.URL)
}

func TestExampleLoads(t *testing.T) {
	vars := map[string]string{
		"CRMSYNC_API_TOKEN": "api-token-123", "CRMSYNC_ADMIN_TOKEN": "admin-token-123",
		"REDIS_URL": "redis://127.0.0.1:6379", "CRM_CLIENT_SECRET": "s3cret",
		"SFTP_PASSWORD": "sftp-pw", "SMTP_PASSWORD": "smtp-pw",
	}
	cfg, err := Parse("example.yaml", Example, env(vars))
	require.NoError(t, err)
	assert.Equal(t, "oauth2", cfg.CRM.Auth.Type)
	assert.Equal(t, "s3cret", cfg.CRM.Auth.OAuth2.ClientSecret.Reveal())
	assert.Equal(t, 7*24*time.Hour, cfg.Retry.Window)
	assert.Equal(t, []int{400, 429, 502, 503, 504}, cfg.Retry.Statuses)

	// The example's own files on disk are the embedded ones.
	onDisk, err := os.ReadFile("example.yaml")
	require.NoError(t, err)
	assert.Equal(t, string(onDisk), string(Example))
}

func TestEveryFieldIsInTheExample(t *testing.T) {
	var missing []string
	var walk func(rt reflect.Type, path string)
	walk = func(rt reflect.Type, path string) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct || rt == reflect.TypeOf(time.Time{}) {
			return
		}
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if opts == "inline" {
				walk(f.Type, path)
				continue
			}
			if name == "" || name == "-" {
				continue
			}
			if !strings.Contains(string(Example), name+":") {
				missing = append(missing, path+name)
			}
			walk(f.Type, path+name+".")
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	assert.Empty(t, missing, "fields that configs/example.yaml does not show")
}

func TestProblems(t *testing.T) {
	base := "server:\n  api_tokens: [abcdefgh1]\n"
	cases := []struct {
		name, yaml string
		env        map[string]string
		path       string
		line       int
		reason     string
	}{
		{"unknown top field", base + "colour: blue\n", nil, "colour", 3, `unknown field "colour"`},
		{"unknown nested field", base + "crm:\n  endpoints:\n    find_account:\n      uri: http://x\n", nil, "crm.endpoints.find_account.uri", 6, `unknown field "uri"`},
		{"no token", "server:\n  listen: 127.0.0.1:1\n", nil, "server.api_tokens", 1, "at least one"},
		{"short token", "server:\n  api_tokens: [abc]\n", nil, "server.api_tokens[0]", 2, "at least 8"},
		{"missing env", base + "redis:\n  url: ${NOPE}\n", nil, "redis.url", 4, "NOPE is not set"},
		{"bad log level", base + "log:\n  level: loud\n", nil, "log.level", 4, "want debug"},
		{"timeout too long", base + "crm:\n  timeout: 30s\n", nil, "crm.timeout", 4, ""},
		{"timeout too short", base + "crm:\n  timeout: 500ms\n", nil, "crm.timeout", 4, ""},
		{"bad template", base + "crm:\n  endpoints:\n    find_account:\n      url: http://crm/x\n      parameters:\n        - name: q\n          value: =CONCAT_OR({NOPE})\n", nil, "crm.endpoints.find_account.parameters[0].value", 9, "NOPE"},
		{"bad method", base + "crm:\n  endpoints:\n    comment:\n      url: http://crm/x/{RECORD_ID}\n      method: DELETE\n", nil, "crm.endpoints.comment.method", 7, ""},
		{"wrong type", base + "worker:\n  concurrency: lots\n", nil, "worker.concurrency", 4, ""},
		{"yaml syntax", "server: [\n", nil, "", 0, ""},
		{"bad retry status", base + "retry:\n  statuses: [200]\n", nil, "retry.statuses[0]", 4, "400 to 599"},
		{"lock shorter than task", base + "worker:\n  task_timeout: 2m\n  lock_ttl: 1m\n", nil, "worker.lock_ttl", 5, "at least"},
		{"routing without secret", base + "routing:\n  enabled: true\n  adapter:\n    target_origin: \"*\"\n", nil, "routing.agent_token_secret", 3, "at least 16"},
		{"routing without origin", base + "routing:\n  enabled: true\n  agent_token_secret: 0123456789abcdef\n", nil, "routing.adapter.target_origin", 3, "required"},
		{"routing bad origin", base + "routing:\n  enabled: true\n  agent_token_secret: 0123456789abcdef\n  adapter:\n    target_origin: https://crm.example.com/page\n", nil, "routing.adapter.target_origin", 7, "want an origin"},
		{"routing bad queue id", base + "routing:\n  enabled: true\n  agent_token_secret: 0123456789abcdef\n  adapter:\n    target_origin: \"*\"\n  queues:\n    - id: ../x\n      channels: [chat]\n", nil, "routing.queues[0].id", 9, "letter or a digit"},
		{"routing queue without channels", base + "routing:\n  enabled: true\n  agent_token_secret: 0123456789abcdef\n  adapter:\n    target_origin: \"*\"\n  queues:\n    - id: support\n", nil, "routing.queues[0].channels", 9, "at least one"},
		{"routing channel in two lists", base + "routing:\n  enabled: true\n  agent_token_secret: 0123456789abcdef\n  adapter:\n    target_origin: \"*\"\n  lists:\n    - id: a\n      channels: [sms]\n    - id: b\n      channels: [sms]\n", nil, "routing.lists[1].channels[0]", 12, "already feeds"},
		{"routing bad lookup url", base + "routing:\n  enabled: true\n  agent_token_secret: 0123456789abcdef\n  adapter:\n    target_origin: \"*\"\n  lookup:\n    ivr_url: https://crm/x?phone={PHONE}\n", nil, "routing.lookup.ivr_url", 9, "PHONE"},
		{"salesforce without routing", base + "salesforce:\n  enabled: true\n", nil, "salesforce.enabled", 4, "routing.enabled"},
		{"salesforce bad base url", base + "routing:\n  enabled: true\n  agent_token_secret: 0123456789abcdef\n  adapter:\n    target_origin: \"*\"\nsalesforce:\n  enabled: true\n  base_url: ftp://x\n", nil, "salesforce.base_url", 10, ""},
		{"salesforce way both", base + "routing:\n  enabled: true\n  agent_token_secret: 0123456789abcdef\n  adapter:\n    target_origin: \"*\"\nsalesforce:\n  enabled: true\n  queues:\n    support:\n      queue_id: q1\n      flow_id: f1\n", nil, "salesforce.queues.support", 11, "not both"},
		{"routing bad log_off", base + "routing:\n  enabled: true\n  agent_token_secret: 0123456789abcdef\n  adapter:\n    target_origin: \"*\"\n  log_off: drop\n", nil, "routing.log_off", 8, "requeue or keep"},
		{"pega without routing", base + "pega:\n  enabled: true\n  inbound:\n    bearer_tokens: [abcdefgh]\n  service:\n    base_url: http://pega:9080\n    token: t0ken\n", nil, "pega.enabled", 4, "routing.enabled"},
		{"pega without inbound auth", base + "routing:\n  enabled: true\n  agent_token_secret: 0123456789abcdef\n  adapter:\n    target_origin: \"*\"\npega:\n  enabled: true\n  service:\n    base_url: http://pega:9080\n    token: t0ken\n", nil, "pega.inbound", 8, "authenticated"},
		{"pega two service auths", base + "routing:\n  enabled: true\n  agent_token_secret: 0123456789abcdef\n  adapter:\n    target_origin: \"*\"\npega:\n  enabled: true\n  inbound:\n    bearer_tokens: [abcdefgh]\n  service:\n    base_url: http://pega:9080\n    token: t0ken\n    username: u\n    password: p\n", nil, "pega.service", 12, "exactly one"},
		{"pega bad base url", base + "routing:\n  enabled: true\n  agent_token_secret: 0123456789abcdef\n  adapter:\n    target_origin: \"*\"\npega:\n  enabled: true\n  inbound:\n    bearer_tokens: [abcdefgh]\n  service:\n    base_url: pega:9080\n    token: t0ken\n", nil, "pega.service.base_url", 13, "http"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("x.yaml", []byte(c.yaml), env(c.env))
			require.Error(t, err)
			assert.Nil(t, cfg)
			var ps *Problems
			require.ErrorAs(t, err, &ps)
			require.NotEmpty(t, ps.Items)
			t.Log(err)
			if c.path == "" {
				return
			}
			var found *Problem
			for i := range ps.Items {
				if ps.Items[i].Path == c.path {
					found = &ps.Items[i]
				}
			}
			require.NotNil(t, found, "no problem at %s in %v", c.path, err)
			assert.Equal(t, c.line, found.Line)
			assert.Contains(t, found.Reason, c.reason)
		})
	}
}

func TestEnvExpansionCannotChangeStructure(t *testing.T) {
	y := "server:\n  api_tokens: [\"${TOK}\"]\n"
	cfg, err := Parse("x.yaml", []byte(y), env(map[string]string{"TOK": "a: b\n- c: [d]"}))
	require.NoError(t, err)
	require.Len(t, cfg.Server.APITokens, 1)
	assert.Equal(t, "a: b\n- c: [d]", cfg.Server.APITokens[0].Reveal())
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(p, []byte("server:\n  api_tokens: [abcdefgh]\n"), 0o600))
	cfg, err := Load(p)
	require.NoError(t, err)
	assert.Equal(t, "crmsync:", cfg.Redis.KeyPrefix)
	_, err = Load(filepath.Join(dir, "missing.yaml"))
	assert.Error(t, err)
}

func TestProblemsNeverShowSecrets(t *testing.T) {
	y := "server:\n  api_tokens: [abcdefgh]\ncrm:\n  auth:\n    type: basic\n    password: topsecret-pw\n"
	_, err := Parse("x.yaml", []byte(y), env(nil))
	require.Error(t, err) // basic needs a username
	assert.NotContains(t, err.Error(), "topsecret-pw")
}
