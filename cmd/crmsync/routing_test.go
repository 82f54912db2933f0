package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/configs"
	"github.com/crmsync/crmsync/connectors/salesforce/sftest"
	"github.com/crmsync/crmsync/internal/redistest"
)

// demoMain runs the demo config on the tests' Redis with every routing
// feature on: Pega (its service at pegaURL) and Salesforce BYOC (at
// sfURL). edit may change the config before the process starts.
func demoMain(t *testing.T, edit func(*configs.Config)) *Main {
	t.Helper()
	addr := freeAddr(t)
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	storeDir, spoolDir := t.TempDir(), t.TempDir()
	cfg, err := configs.Parse("demo.yaml", configs.Demo, func(k string) (string, bool) {
		switch k {
		case "CRMSYNC_LISTEN":
			return addr, true
		case "REDIS_URL":
			return redistest.URL(t), true
		case "CRMSYNC_STORAGE":
			return storeDir, true
		case "CRMSYNC_SPOOL":
			return spoolDir, true
		}
		return "", false
	})
	require.NoError(t, err)
	cfg.Redis.KeyPrefix = prefix
	cfg.Worker.Queue = redistest.Queue(t, rdb)
	if edit != nil {
		edit(cfg)
	}
	logs := &syncBuf{}
	m := &Main{Config: cfg, Logger: newLogger(configs.Log{Level: "info", Format: "json"}, logs), API: true, Worker: true}
	require.NoError(t, m.Run(context.Background()))
	t.Cleanup(func() {
		_ = m.Close()
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	return m
}

// Every route the fully wired server registers is in docs/openapi.yaml,
// with its method.
func TestEveryRouteIsInOpenAPI(t *testing.T) {
	sf := sftest.Start(t, nil)
	m := demoMain(t, func(c *configs.Config) {
		c.Pega = configs.Pega{
			Enabled: true, Channel: "chat", Capacity: 1,
			Inbound: configs.PegaInbound{BearerTokens: []crmsync.Secret{"pega-inbound-token"}},
			Service: configs.PegaService{BaseURL: "http://127.0.0.1:9", Token: "pega-service-token"},
		}
		sc := sf.ClientConfig(t, nil)
		c.Salesforce = configs.Salesforce{
			Enabled: true, BaseURL: sc.BaseURL, OrgID: sc.OrgID, AuthorizationContext: sc.AuthorizationContext,
			ClientID: sc.ClientID, Subject: sc.Subject, Audience: sc.Audience, PrivateKey: sc.PrivateKey,
		}
	})
	raw, err := os.ReadFile("../../docs/openapi.yaml")
	require.NoError(t, err)
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &doc))

	routes := m.api.Routes()
	for _, want := range []string{"POST /pega/route", "GET /v1/agents/{id}/events", "POST /v1/routing/byoc/routes", "PUT /v1/routing/lists/{list}", "GET /agent/adapter"} {
		assert.Contains(t, routes, want, "the fully wired server should register it")
	}
	for _, r := range routes {
		method, path, ok := strings.Cut(r, " ")
		if !ok {
			method, path = "GET", r
		}
		ops, found := doc.Paths[path]
		if assert.True(t, found, "route %q is not in docs/openapi.yaml", r) {
			_, has := ops[strings.ToLower(method)]
			assert.True(t, has, "route %q: method missing in docs/openapi.yaml", r)
		}
	}
}
