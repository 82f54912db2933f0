package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/configs"
	"github.com/crmsync/crmsync/connectors/crm/samplecrm"
	"github.com/crmsync/crmsync/internal/redistest"
	"github.com/crmsync/crmsync/jobs"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds crmsync once per test run.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "crmsync-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "crmsync")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

// workerConfig is the demo config pointed at crmHost, with this test's own
// Redis keys and queue, and a fast retry schedule.
func workerConfig(t testing.TB, crmHost, prefix, queue string) string {
	y := string(configs.Demo)
	y = strings.Replace(y, "  url: ${REDIS_URL:-}\n", "  url: ${REDIS_URL:-}\n  key_prefix: \""+prefix+"\"\n", 1)
	y = strings.Replace(y, "  concurrency: 20\n", "  concurrency: 20\n  queue: "+queue+"\n  task_timeout: 10s\n  lock_ttl: 12s\nretry:\n  initial_delay: 200ms\n  max_delay: 1s\n", 1)
	y = strings.Replace(y, "sample_crm:\n  enabled: true", "sample_crm:\n  enabled: false", 1)
	y = strings.ReplaceAll(y, "${CRMSYNC_LISTEN:-127.0.0.1:8080}", crmHost)
	// The folders outlive each worker process, not the test.
	dir := t.TempDir()
	y = strings.Replace(y, "${CRMSYNC_STORAGE:-data/storage}", filepath.Join(dir, "storage"), 1)
	y = strings.Replace(y, "${CRMSYNC_SPOOL:-data/spool}", filepath.Join(dir, "spool"), 1)
	p := filepath.Join(dir, "worker.yaml")
	require.NoError(t, os.WriteFile(p, []byte(y), 0o600))
	return p
}

type child struct {
	cmd *exec.Cmd
	out *strings.Builder
}

func startWorker(t testing.TB, bin, cfg string) *child {
	t.Helper()
	var out strings.Builder
	cmd := exec.Command(bin, "serve", "--worker-only", "--config", cfg)
	cmd.Env = append(os.Environ(), "REDIS_URL="+redistest.URL(t))
	cmd.Stdout, cmd.Stderr = &syncWriter{w: &out}, &syncWriter{w: &out}
	require.NoError(t, cmd.Start())
	c := &child{cmd: cmd, out: &out}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return c
}

// stop ends the process cleanly and waits for it.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	_ = c.cmd.Wait()
}

type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A real worker process is killed with SIGKILL in the middle of many
// flows, then stopped with SIGTERM, then run to the end: every session
// ends with exactly one account, one record, its two comments and its
// update, and every step done.
func TestWorkerKilledMidFlowLosesAndDuplicatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a worker process; takes about a minute and a half")
	}
	bin := binary(t)
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	queue := redistest.Queue(t, rdb)
	inspector := asynq.NewInspectorFromRedisClient(rdb)

	crmSrv := samplecrm.New(samplecrm.Options{})
	// Each CRM call takes a while, so the kill lands mid-flow.
	crmSrv.SetFault(samplecrm.Fault{Mode: samplecrm.FaultSlow, Delay: 40 * time.Millisecond})
	hs := serveSampleCRM(t, crmSrv)
	cfg := workerConfig(t, strings.TrimPrefix(hs.URL, "http://"), prefix, queue)

	const n = 150
	enq := jobs.NewEnqueuer(asynq.NewClientFromRedisClient(rdb), jobs.EnqueuerConfig{Queue: queue})
	for i := 0; i < n; i++ {
		body := fmt.Sprintf(`[{"type":"New_Call","data":{"call_id":%d,"agent_id":1,"end_user_name":"Caller %d","end_user_phone":"+1 628 %03d %04d"}},`+
			`{"type":"End_Call","data":{"call_id":%d,"agent_id":1,"call_duration":61,"disconnected_by":"agent"}}]`, 9000+i, i, 300+i/1000, i, 9000+i)
		evs, err := crmsync.DecodeEvents([]byte(body))
		require.NoError(t, err)
		_, err = enq.Enqueue(context.Background(), evs)
		require.NoError(t, err)
	}

	w := startWorker(t, bin, cfg)
	waitFor(t, "some records", 60*time.Second, func() bool { return len(crmSrv.Records()) >= 20 })
	require.NoError(t, w.cmd.Process.Signal(syscall.SIGKILL))
	_ = w.cmd.Wait()
	killedAt := len(crmSrv.Records())
	t.Logf("killed with %d records made", killedAt)
	require.Less(t, killedAt, n, "the kill came too late to mean anything")

	w = startWorker(t, bin, cfg)
	waitFor(t, "more records", 60*time.Second, func() bool { return len(crmSrv.Records()) >= killedAt+20 })
	require.NoError(t, w.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, w.cmd.Wait(), "a SIGTERM is a clean stop: %s", w.out.String())
	t.Logf("stopped with %d records made", len(crmSrv.Records()))

	crmSrv.ClearFault()
	w = startWorker(t, bin, cfg)
	waitFor(t, "the queue to drain", 3*time.Minute, func() bool {
		info, err := inspector.GetQueueInfo(queue)
		return err == nil && info.Pending+info.Active+info.Scheduled+info.Retry == 0
	})
	info, err := inspector.GetQueueInfo(queue)
	require.NoError(t, err)
	assert.Zero(t, info.Archived)

	accounts := crmSrv.Accounts()
	records := crmSrv.Records()
	assert.Len(t, accounts, n, "one account per caller")
	assert.Len(t, records, n, "one record per session")
	perAccount := map[string]int{}
	for _, r := range records {
		perAccount[r.AccountID]++
		assert.Len(t, crmSrv.Comments(r.ID), 2, "record %s: start and end comments, once each", r.ID)
	}
	for _, a := range accounts {
		assert.Equal(t, 1, perAccount[a.ID], "account %s", a.ID)
	}
	store := jobs.NewStore(rdb, prefix)
	for i := 0; i < n; i++ {
		v, err := store.View(context.Background(), crmsync.SessionKey{Kind: "call", ID: fmt.Sprint(9000 + i)})
		require.NoError(t, err)
		assert.NotEmpty(t, v.CRM.AccountID)
		assert.NotEmpty(t, v.CRM.RecordID)
		// Two comments, two "seen" marks, the update, and the agent's
		// lookup URL and record pop, each once.
		assert.Len(t, v.Steps, 7, "session %d steps: %v", 9000+i, v.Steps)
		assert.Contains(t, v.Steps, "pop:1", "session %d: the record popped to agent 1", 9000+i)
	}
}
