package jobs

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	cmail "github.com/crmsync/crmsync/connectors/mail"
	"github.com/crmsync/crmsync/internal/smtptest"
	"github.com/crmsync/crmsync/storage"
	"github.com/crmsync/crmsync/storage/local"
)

type closeEnv struct {
	*env
	closer  *Closer
	intake  *Intake
	stored  string
	smtp    *smtptest.Server
	storage storage.Target
}

func newCloseEnv(t *testing.T) *closeEnv {
	e := newEnv(t, envOpts{noWorker: true})
	spool, err := local.New(local.Config{Path: t.TempDir()})
	require.NoError(t, err)
	dir := t.TempDir()
	target, err := local.New(local.Config{Path: dir})
	require.NoError(t, err)
	srv := smtptest.Start(t)
	host, port, _ := net.SplitHostPort(srv.Addr)
	p, _ := strconv.Atoi(port)
	sender, err := cmail.NewSender(cmail.SMTP{Host: host, Port: p, Security: "none", From: "no-reply@crmsync.test"}, nil)
	require.NoError(t, err)
	kinds := map[storage.FileKind]bool{}
	for _, k := range storage.FileKinds {
		kinds[k] = true
	}
	c := &Closer{Store: e.store, Spool: spool, Storage: target, Stored: kinds, CRM: e.client, AlsoCRM: true,
		Mail: sender, MailGlobal: cmail.Settings{Enabled: true, To: "crm@example.com"},
		MailQueues: map[string]cmail.Settings{"9000": {Enabled: true, To: "queue9000@example.com"}},
		Policy:     DefaultPolicy()}
	in := &Intake{Store: e.store, Spool: spool, Enqueuer: e.enq}
	e.proc.Closeouts, e.proc.CloseoutDelay = e.enq, 0
	e.proc.StartWait = 300 * time.Millisecond
	e.worker = NewWorkerWith(e.rdb, e.proc, c, in, WorkerConfig{Queue: e.queue, Concurrency: 10, PollInterval: 50 * time.Millisecond, ShutdownTimeout: 5 * time.Second})
	require.NoError(t, e.worker.Start())
	return &closeEnv{env: e, closer: c, intake: in, stored: dir, smtp: srv, storage: target}
}

func (c *closeEnv) readStored(t *testing.T, name string) []byte {
	b, err := os.ReadFile(filepath.Join(c.stored, filepath.FromSlash(name)))
	require.NoError(t, err)
	return b
}

func TestCloseoutCall(t *testing.T) {
	c := newCloseEnv(t)
	rec := make([]byte, 3<<20)
	_, _ = rand.Read(rec)
	sum := sha256.Sum256(rec)

	c.post(newCall(700, phone(700)))
	c.drain(20 * time.Second)
	k := crmsync.SessionKey{Kind: "call", ID: "700"}
	_, err := c.intake.Receive(context.Background(), k, FileMeta{Kind: storage.CallRecordings, Format: "mp3"}, io.MultiReader(bytes.NewReader(rec)), -1)
	require.NoError(t, err)
	c.post(endCall(700))
	c.drain(30 * time.Second)

	got := c.readStored(t, "ujet-voice-recordings/call-700.mp3")
	assert.Equal(t, hex.EncodeToString(sum[:]), hex.EncodeToString(func() []byte { s := sha256.Sum256(got); return s[:] }()))
	var meta Metadata
	require.NoError(t, json.Unmarshal(c.readStored(t, "ujet-metadata/call-700.json"), &meta))
	assert.Equal(t, "call-700", meta.Session)
	require.Len(t, meta.Files, 1)
	assert.Equal(t, "ujet-voice-recordings/call-700.mp3", meta.Files[0].Name)
	assert.NotEmpty(t, meta.Files[0].StorageURL)
	assert.NotEmpty(t, meta.Files[0].CRMURL)

	records := c.crm.Records()
	require.Len(t, records, 1)
	atts := c.crm.Attachments(records[0].ID)
	require.Len(t, atts, 1, "the recording on the CRM record")
	assert.Equal(t, rec, atts[0].Bytes)

	msgs := c.smtp.Messages()
	require.Len(t, msgs, 1)
	assert.Equal(t, []string{"crm@example.com"}, msgs[0].To)
	m, err := mail.ReadMessage(bytes.NewReader(msgs[0].Data))
	require.NoError(t, err)
	assert.Equal(t, "<call-700.outcome@crmsync>", m.Header.Get("Message-Id"))

	spooled, err := c.closer.Spool.List(context.Background(), "")
	require.NoError(t, err)
	assert.Empty(t, spooled, "the spool is emptied once the files are delivered")

	v := c.view("call-700")
	require.Len(t, v.Files, 2)
	for _, f := range v.Files {
		assert.NotEmpty(t, f.URL)
	}

	// Delivered again (asynq is at-least-once): nothing new anywhere.
	require.NoError(t, c.closer.ProcessTask(context.Background(), NewCloseoutTask(k)))
	require.NoError(t, c.store.rdb.HDel(context.Background(), c.store.sessionKey(k), fieldCloseoutDone).Err())
	require.NoError(t, c.closer.ProcessTask(context.Background(), NewCloseoutTask(k)))
	assert.Len(t, c.smtp.Messages(), 1)
	assert.Len(t, c.crm.Attachments(records[0].ID), 1)
	objs, err := c.storage.List(context.Background(), "")
	require.NoError(t, err)
	assert.Len(t, objs, 2)
}

func TestCloseoutChatTranscriptAndQueueAddress(t *testing.T) {
	c := newCloseEnv(t)
	c.post(`{"type":"New_Chat","data":{"chat_id":800,"agent_id":1,"agent_email":"a@agents.co","queue_id":9000,"end_user_email":"m@example.com","end_user_name":"Mia"}}`)
	c.drain(20 * time.Second)
	c.post(`{"type":"Chat_Inbound_Message","data":{"chat_id":800,"end_user_name":"Mia","message":"Hello, my order is late","occurred_at":"2026-01-02T10:00:00Z"}}`,
		`{"type":"Chat_Outbound_Message","data":{"chat_id":800,"agent_email":"a@agents.co","message":"Sorry!\nLet me check.","occurred_at":"2026-01-02T10:00:05Z"}}`)
	c.drain(20 * time.Second)
	c.post(`{"type":"End_Chat","data":{"chat_id":800,"agent_id":1}}`)
	c.drain(30 * time.Second)

	text := string(c.readStored(t, "ujet-chat-transcripts/chat-800.txt"))
	assert.Equal(t, "2026-01-02T10:00:00Z Mia: Hello, my order is late\n2026-01-02T10:00:05Z Agent a@agents.co: Sorry!\n    Let me check.\n", text)
	msgs := c.smtp.Messages()
	require.Len(t, msgs, 1)
	assert.Equal(t, []string{"queue9000@example.com"}, msgs[0].To, "the queue's address overrides the global one")
	assert.Contains(t, string(msgs[0].Data), "chat-800.txt")
}

func TestAbandonedSessionGetsNoEmail(t *testing.T) {
	c := newCloseEnv(t)
	// Ended without ever being answered.
	c.post(`{"type":"End_Call","data":{"call_id":900,"end_user_phone":"+1 415 555 0199"}}`)
	time.Sleep(200 * time.Millisecond)
	c.drain(60 * time.Second)
	_ = c.readStored(t, "ujet-metadata/call-900.json")
	assert.Empty(t, c.smtp.Messages())
}

// A file given by URL is fetched by a worker into the spool, then closed
// out like any other.
func TestFetchedFile(t *testing.T) {
	c := newCloseEnv(t)
	body := bytes.Repeat([]byte("RIFF wav "), 1000)
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/vm/42.wav" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(src.Close)
	k := crmsync.SessionKey{Kind: "call", ID: "42"}
	name, err := c.intake.Fetch(context.Background(), k, FileMeta{Kind: storage.Voicemails, Format: "wav"}, src.URL+"/vm/42.wav")
	require.NoError(t, err)
	assert.Equal(t, "ujet-voicemails/call-42.wav", name)
	_, err = c.intake.Fetch(context.Background(), k, FileMeta{Kind: storage.Photos, MediaID: "9"}, src.URL+"/missing.jpg")
	require.NoError(t, err)
	c.drain(20 * time.Second)
	files, err := c.store.Files(context.Background(), k)
	require.NoError(t, err)
	require.Contains(t, files, name)
	assert.EqualValues(t, len(body), files[name].Size)
	assert.NotContains(t, files, "ujet-media/call-42-photo-9.jpg", "a 404 is not retried and records nothing")
	archived, err := c.inspector.ListArchivedTasks(c.queue)
	require.NoError(t, err)
	require.Len(t, archived, 1)
	assert.Contains(t, archived[0].LastErr, "status 404")
}

// With storage.urls: crm the session view shows the CRM's URL of a file.
func TestViewShowsChosenURL(t *testing.T) {
	c := newCloseEnv(t)
	c.post(newCall(710, phone(710)))
	c.drain(20 * time.Second)
	k := crmsync.SessionKey{Kind: "call", ID: "710"}
	_, err := c.intake.Receive(context.Background(), k, FileMeta{Kind: storage.CallRecordings, Format: "wav"}, bytes.NewReader([]byte("RIFF....WAVE")), -1)
	require.NoError(t, err)
	c.post(endCall(710))
	c.drain(30 * time.Second)
	v := c.view("call-710")
	rec := v.Files[len(v.Files)-1]
	require.Equal(t, "ujet-voice-recordings/call-710.wav", rec.Name)
	assert.True(t, strings.HasPrefix(rec.URL, "file://"), rec.URL)
	c.store.DisplayCRMURLs = true
	v = c.view("call-710")
	rec = v.Files[len(v.Files)-1]
	assert.Contains(t, rec.URL, "/attachments/", "the CRM's download URL")
}
