package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/configs"
	"github.com/crmsync/crmsync/connectors/crm/samplecrm"
	"github.com/crmsync/crmsync/connectors/mail"
	"github.com/crmsync/crmsync/internal/smtptest"
)

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// The README's walk-through: the demo config, a New_Call posted with
// curl's request, the session shown with its record, the record page.
func TestServeDemo(t *testing.T) {
	smtpSrv := smtptest.Start(t)
	d := demoMain(t, func(cfg *configs.Config) {
		cfg.Closeout.Delay = 300 * time.Millisecond
		host, port, _ := net.SplitHostPort(smtpSrv.Addr)
		cfg.Email.Global = mail.Settings{Enabled: true, To: "crm-inbox@example.com"}
		cfg.Email.SMTP = mail.SMTP{Host: host, Port: atoi(t, port), Security: "none", From: "no-reply@crmsync.test"}
	})
	m, logs, storeDir := d.Main, d.logs, d.storage
	base := "http://" + m.Addr

	post := func(body string) int {
		req, _ := http.NewRequest("POST", base+"/v1/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer demo-token-change-me")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 202, post(`{"type":"New_Call","data":{"call_id":103646,"agent_id":1,"agent_email":"james.bond@agents.co","queue_path":"Developers / James","session_type":"Voice Inbound","end_user_name":"Jane Doe","end_user_phone":"+1 222 333 4444"}}`))

	var view struct {
		CRM struct {
			RecordID  string `json:"record_id"`
			RecordURL string `json:"record_url"`
		} `json:"crm"`
	}
	deadline := time.Now().Add(20 * time.Second)
	var last []byte
	for view.CRM.RecordURL == "" {
		require.True(t, time.Now().Before(deadline), "no record after 20s; session:\n%s\nlogs:\n%s", last, logs.String())
		time.Sleep(50 * time.Millisecond)
		req, _ := http.NewRequest("GET", base+"/v1/sessions/call-103646", nil)
		req.Header.Set("Authorization", "Bearer demo-token-change-me")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = b
		if resp.StatusCode == 200 {
			require.NoError(t, json.Unmarshal(b, &view))
		}
	}
	assert.Equal(t, base+"/sample-crm/records/"+view.CRM.RecordID, view.CRM.RecordURL)
	resp, err := http.Get(view.CRM.RecordURL)
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, string(page), "Jane Doe")

	// A recording, then the end of the call: after the close-out delay the
	// files are in the storage folder's layout, the recording is on the
	// record, and one email went out.
	recording := bytes.Repeat([]byte("fake mp3 frame "), 4096)
	req, _ := http.NewRequest("POST", base+"/v1/sessions/call-103646/files?kind=call_recordings", bytes.NewReader(recording))
	req.Header.Set("Authorization", "Bearer demo-token-change-me")
	req.Header.Set("Content-Type", "audio/mpeg")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 202, resp.StatusCode)
	require.Equal(t, 202, post(`{"type":"End_Call","data":{"call_id":103646,"agent_id":1,"call_duration":95,"disconnected_by":"agent"}}`))
	deadline = time.Now().Add(30 * time.Second)
	for len(smtpSrv.Messages()) == 0 {
		require.True(t, time.Now().Before(deadline), "no email after 30s; logs:\n%s", logs.String())
		time.Sleep(50 * time.Millisecond)
	}
	got, err := os.ReadFile(filepath.Join(storeDir, "ujet-voice-recordings", "call-103646.mp3"))
	require.NoError(t, err)
	assert.Equal(t, recording, got)
	meta, err := os.ReadFile(filepath.Join(storeDir, "ujet-metadata", "call-103646.json"))
	require.NoError(t, err)
	assert.Contains(t, string(meta), `"session": "call-103646"`)
	resp, err = http.Get(base + "/sample-crm/api/records/" + view.CRM.RecordID + "/attachments")
	require.NoError(t, err)
	atts, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(atts), "call-103646.mp3")
	time.Sleep(200 * time.Millisecond)
	require.Len(t, smtpSrv.Messages(), 1)
	assert.Equal(t, []string{"crm-inbox@example.com"}, smtpSrv.Messages()[0].To)

	req, _ = http.NewRequest("GET", base+"/admin/queues/", nil)
	req.SetBasicAuth("ops", "demo-token-change-me")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode, "the queue UI is mounted")
	assert.Contains(t, logs.String(), "sample CRM is on")
}

func atoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	require.NoError(t, os.WriteFile(good, configs.Demo, 0o600))
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"check", "config", "--config", good}, &out, io.Discard))
	assert.Contains(t, out.String(), "ok")

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("server:\n  api_tokens: [abcdefgh]\ncrm:\n  timeout: 20s\n  endpoints:\n    find_account:\n      url: http://crm/x\n      parameters:\n        - {name: q, value: \"=CONCAT_OR({PHONE}\"}\n"), 0o600))
	err := run(context.Background(), []string{"check", "config", "--config", bad}, &out, io.Discard)
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, "line 4: crm.timeout")
	assert.Contains(t, msg, "line 9: crm.endpoints.find_account.parameters[0].value")

	err = run(context.Background(), []string{"check", "config"}, &out, io.Discard)
	var ue usageError
	assert.ErrorAs(t, err, &ue)
}

func TestCheckCRM(t *testing.T) {
	crmSrv := samplecrm.New(samplecrm.Options{BasicUser: "crmsync", BasicPassword: "pw-very-secret-1"})
	hs := serveSampleCRM(t, crmSrv)
	y := strings.ReplaceAll(string(configs.Demo), "${CRMSYNC_LISTEN:-127.0.0.1:8080}", strings.TrimPrefix(hs.URL, "http://"))
	y = strings.Replace(y, "  phone_format: automatic\n", "  phone_format: automatic\n  auth:\n    type: basic\n    username: crmsync\n    password: ${CRM_PW}\n", 1)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(y), 0o600))
	sample := filepath.Join(dir, "s.json")
	require.NoError(t, os.WriteFile(sample, []byte(`{"type":"New_Call","data":{"call_id":1,"end_user_name":"Jane Doe","end_user_phone":"+1 222 333 4444","end_user_email":"jane@example.com"}}`), 0o600))
	t.Setenv("CRM_PW", "pw-very-secret-1")

	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"check", "crm", "--config", cfgPath, "--endpoint", "find_account", "--session", sample}, &out, io.Discard))
	s := out.String()
	assert.Contains(t, s, "GET "+hs.URL+"/sample-crm/api/accounts?q=")
	assert.Contains(t, s, "%28Phone%3Aequals%3A%2A222%2A333%2A4444%29+or+%28Email%3Aequals%3Ajane%40example.com%29")
	assert.NotContains(t, s, "pw-very-secret-1")
	assert.NotContains(t, s, "--- answer", "nothing sent without --send")
	assert.Empty(t, crmSrv.Requests())

	out.Reset()
	require.NoError(t, run(context.Background(), []string{"check", "crm", "--config", cfgPath, "--endpoint", "create_account", "--session", sample, "--send"}, &out, io.Discard))
	s = out.String()
	assert.Contains(t, s, `"account"`)
	assert.Contains(t, s, "--- answer: status 201")
	assert.Contains(t, s, "--- id: 1")
	assert.NotContains(t, s, "pw-very-secret-1")
	require.Len(t, crmSrv.Accounts(), 1)

	err := run(context.Background(), []string{"check", "crm", "--config", cfgPath, "--endpoint", "delete_everything", "--session", sample}, &out, io.Discard)
	assert.ErrorContains(t, err, "not configured")
}

func TestCheckStorageAndEmail(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	y := strings.Replace(string(configs.Demo), "${CRMSYNC_STORAGE:-data/storage}", store, 1)
	smtpSrv := smtptest.Start(t)
	host, port, _ := net.SplitHostPort(smtpSrv.Addr)
	y += "\nemail:\n  smtp:\n    host: " + host + "\n    port: " + port + "\n    security: none\n    from: no-reply@crmsync.test\n"
	cfgPath := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(y), 0o600))

	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"check", "storage", "--config", cfgPath}, &out, io.Discard))
	assert.Contains(t, out.String(), "local storage: wrote, read back and deleted a probe file: ok")
	left, err := os.ReadDir(store)
	require.NoError(t, err)
	assert.Empty(t, left, "the probe file is gone")

	// A storage folder that cannot be written says so in plain words.
	bad := strings.Replace(y, store, "/proc/crmsync-no-such-folder", 1)
	require.NoError(t, os.WriteFile(cfgPath, []byte(bad), 0o600))
	err = run(context.Background(), []string{"check", "storage", "--config", cfgPath}, &out, io.Discard)
	require.Error(t, err)
	t.Log(err)

	require.NoError(t, os.WriteFile(cfgPath, []byte(y), 0o600))
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"check", "email", "--config", cfgPath, "--to", "ops@example.com"}, &out, io.Discard))
	assert.Contains(t, out.String(), "sent a test message to ops@example.com")
	require.Len(t, smtpSrv.Messages(), 1)
	assert.Equal(t, []string{"ops@example.com"}, smtpSrv.Messages()[0].To)

	err = run(context.Background(), []string{"check", "email", "--config", cfgPath, "--to", "ops@example.com\r\nBcc: x@evil.test"}, &out, io.Discard)
	require.Error(t, err)
	assert.Len(t, smtpSrv.Messages(), 1, "nothing sent for a header injection attempt")
}

// serveSampleCRM serves crm on a loopback port under /sample-crm, where
// the demo config's endpoints expect it, until the test ends.
func serveSampleCRM(tb testing.TB, crm *samplecrm.Server) *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle("/sample-crm/", http.StripPrefix("/sample-crm", crm))
	hs := httptest.NewServer(mux)
	tb.Cleanup(hs.Close)
	return hs
}
