package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/crm"
	"github.com/crmsync/crmsync/connectors/crm/samplecrm"
	"github.com/crmsync/crmsync/internal/redistest"
)

func TestCallStartToEnd(t *testing.T) {
	e := newEnv(t, envOpts{})
	acc := e.post(newCall(103646, "+1 222 333 4444"))
	require.Len(t, acc, 1)
	assert.Equal(t, "call-103646", acc[0].Session)
	e.drain(20 * time.Second)
	e.post(endCall(103646))
	e.drain(20 * time.Second)

	accounts := e.crm.Accounts()
	require.Len(t, accounts, 1)
	assert.Equal(t, "Caller 103646", accounts[0].Name)
	assert.Equal(t, "+1 222 333 4444", accounts[0].Phone, "automatic format on create")
	assert.Equal(t, "caller103646@example.com", accounts[0].Email)
	records := e.crm.Records()
	require.Len(t, records, 1)
	rec := records[0]
	assert.Equal(t, accounts[0].ID, rec.AccountID)
	assert.Contains(t, rec.Subject, "Call 103646")
	assert.Contains(t, rec.Description, "Call duration: 05:03")
	assert.Equal(t, "05:03", rec.Fields["call_duration"])
	assert.Equal(t, "end_user", rec.Fields["disconnected_by"])
	comments := e.crm.Comments(rec.ID)
	require.Len(t, comments, 2)
	assert.Contains(t, comments[0].Body, "Call 103646 started, answered by james.bond@agents.co")
	assert.Contains(t, comments[1].Body, "Call 103646 ended. Duration 05:03. Hold 00:20. Wait 00:41. Disconnected by end_user.")

	v := e.view("call-103646")
	assert.Equal(t, accounts[0].ID, v.CRM.AccountID)
	assert.Equal(t, rec.ID, v.CRM.RecordID)
	assert.Equal(t, e.crmURL+"/accounts/"+accounts[0].ID, v.CRM.AccountURL)
	assert.Equal(t, e.crmURL+"/records/"+rec.ID, v.CRM.RecordURL)
	assert.Equal(t, "Caller 103646", v.Facts.EndUserName)
	require.NotNil(t, v.Facts.CallDuration)
	assert.False(t, v.Facts.StartedAt.IsZero())
	assert.False(t, v.Facts.EndedAt.IsZero())
	var endpoints []string
	for _, en := range v.Timeline {
		if en.Kind == "crm" {
			endpoints = append(endpoints, fmt.Sprintf("%s %d", en.Endpoint, en.Status))
			assert.Positive(t, en.Duration)
		}
	}
	// A new account has no record to find: find_record is skipped.
	assert.Equal(t, []string{"find_account 200", "create_account 201", "create_record 201", "comment 201", "comment 201", "update_record 200"}, endpoints)
	last := v.Timeline[len(v.Timeline)-1]
	assert.Equal(t, "job", last.Kind)
	assert.Equal(t, "done", last.Outcome)
}

// A caller who is already in the CRM gets the open record found, not a
// second one (record_mode reuse_open).
func TestReturningCallerReusesOpenRecord(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.post(newCall(1, "+1 222 333 4444"))
	e.drain(20 * time.Second)
	e.post(newCall(2, "+1 222 333 4444"))
	e.drain(20 * time.Second)
	require.Len(t, e.crm.Accounts(), 1)
	require.Len(t, e.crm.Records(), 1)
	assert.Len(t, e.crm.Comments(e.crm.Records()[0].ID), 2)
	var endpoints []string
	for _, en := range e.view("call-2").Timeline {
		if en.Kind == "crm" {
			endpoints = append(endpoints, en.Endpoint)
		}
	}
	assert.Equal(t, []string{"find_account", "find_record", "comment"}, endpoints)
}

func TestChatAndTransferAndRating(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.post(`{"type":"New_Chat","data":{"chat_id":73522,"session_type":"messaging inbound (web chat)","agent_id":1,"agent_email":"james.bond@agents.co","end_user_email":"m@example.com"}}`)
	e.drain(20 * time.Second)
	e.post(`{"type":"Transfer","data":{"chat_id":73522,"from_agent_id":1,"to_agent_id":2,"to_agent_email":"q@agents.co"}}`,
		`{"type":"CSAT_Rating","data":{"chat_id":73522,"rating":4,"feedback":"quick & kind"}}`)
	e.drain(20 * time.Second)
	records := e.crm.Records()
	require.Len(t, records, 1)
	var bodies []string
	for _, c := range e.crm.Comments(records[0].ID) {
		bodies = append(bodies, c.Body)
	}
	require.Len(t, bodies, 3)
	assert.Contains(t, bodies, "Chat 73522 transferred from agent 1 to agent q@agents.co.")
	assert.Contains(t, bodies, "Chat 73522 rated 4/5. Feedback: quick & kind.")
	assert.Equal(t, "4", fmt.Sprint(records[0].Fields["rating"]))
	assert.Equal(t, "quick & kind", records[0].Fields["feedback"])
	v := e.view("chat-73522")
	assert.Equal(t, 1, v.Facts.Transfers)
}

func TestDuplicateEventTakenOnce(t *testing.T) {
	e := newEnv(t, envOpts{})
	first := e.post(newCall(1, phone(1)))
	again := e.post(newCall(1, phone(1)))
	assert.False(t, first[0].Duplicate)
	assert.True(t, again[0].Duplicate)
	e.drain(20 * time.Second)
	again = e.post(newCall(1, phone(1)))
	assert.True(t, again[0].Duplicate, "still a duplicate after it ran")
	e.drain(20 * time.Second)
	require.Len(t, e.crm.Records(), 1)
	assert.Len(t, e.crm.Comments(e.crm.Records()[0].ID), 1)
}

// A task delivered again after it finished (asynq is at-least-once) repeats
// no step.
func TestRedeliveryRepeatsNothing(t *testing.T) {
	e := newEnv(t, envOpts{noWorker: true})
	for _, body := range []string{newCall(7, phone(7)), endCall(7)} {
		evs, err := crmsync.DecodeEvents([]byte(body))
		require.NoError(t, err)
		task, err := NewEventTask(evs[0], time.Now())
		require.NoError(t, err)
		for i := 0; i < 3; i++ {
			require.NoError(t, e.proc.ProcessTask(context.Background(), task))
		}
	}
	require.Len(t, e.crm.Accounts(), 1)
	require.Len(t, e.crm.Records(), 1)
	assert.Len(t, e.crm.Comments(e.crm.Records()[0].ID), 2)
	updates := 0
	for _, r := range e.crm.Requests() {
		if r.Method == "PATCH" {
			updates++
		}
	}
	assert.Equal(t, 1, updates)
}

// failHook fails the first state write that carries field, as if the
// process died between the CRM's answer and the state write.
type failHook struct {
	field string
	mu    sync.Mutex
	fired bool
}

func (h *failHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *failHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *failHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		if strings.EqualFold(cmd.Name(), "evalsha") && slices.Contains(args, any(h.field)) {
			h.mu.Lock()
			fire := !h.fired
			h.fired = true
			h.mu.Unlock()
			if fire {
				return errors.New("injected: connection lost")
			}
		}
		return next(ctx, cmd)
	}
}

func TestCrashAfterCreateFindsInsteadOfCreatingAgain(t *testing.T) {
	for _, field := range []string{fieldAccountID, fieldRecordID} {
		t.Run(field, func(t *testing.T) {
			e := newEnv(t, envOpts{noWorker: true})
			hooked := redis.NewClient(redistest.Options(t))
			t.Cleanup(func() { _ = hooked.Close() })
			h := &failHook{field: field}
			hooked.AddHook(h)
			e.proc.Store = NewStore(hooked, e.prefix)
			// The dead job's lock lapses, as it would after a crash.
			e.proc.LockTTL = 500 * time.Millisecond

			evs, err := crmsync.DecodeEvents([]byte(newCall(9, phone(9))))
			require.NoError(t, err)
			task, err := NewEventTask(evs[0], time.Now())
			require.NoError(t, err)
			err = e.proc.ProcessTask(context.Background(), task)
			require.Error(t, err, "the state write failed")
			assert.True(t, h.fired)
			// The dead job's lock lapses. The in-process Redis keeps no
			// real time, so the lapse is played by dropping the lock.
			require.NoError(t, e.rdb.Del(context.Background(), e.store.lockKey(evs[0].Session)).Err())
			require.NoError(t, e.proc.ProcessTask(context.Background(), task))

			assert.Len(t, e.crm.Accounts(), 1)
			require.Len(t, e.crm.Records(), 1)
			assert.Len(t, e.crm.Comments(e.crm.Records()[0].ID), 1)
			v := e.view("call-9")
			assert.Equal(t, e.crm.Records()[0].ID, v.CRM.RecordID)
		})
	}
}

func TestManySessionsAtOnce(t *testing.T) {
	e := newEnv(t, envOpts{})
	const n = 60
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Both events at once: the session lock orders them.
			e.post(`[` + newCall(1000+i, phone(1000+i)) + `,` + endCall(1000+i) + `]`)
		}()
	}
	wg.Wait()
	e.drain(60 * time.Second)
	assert.Len(t, e.crm.Accounts(), n)
	records := e.crm.Records()
	require.Len(t, records, n)
	for _, r := range records {
		assert.Len(t, e.crm.Comments(r.ID), 2, "record %s", r.ID)
	}
	for i := 0; i < n; i++ {
		v := e.view(fmt.Sprintf("call-%d", 1000+i))
		assert.NotEmpty(t, v.CRM.RecordID)
		assert.Len(t, v.Steps, 5, "%v", v.Steps) // 2 seen, 2 comments, 1 update
	}
}

func TestCRMOutageRecovers(t *testing.T) {
	pol := Policy{InitialDelay: 100 * time.Millisecond, Factor: 2, MaxDelay: 400 * time.Millisecond, Window: time.Minute, Statuses: DefaultPolicy().Statuses}
	e := newEnv(t, envOpts{policy: &pol})
	e.crm.SetFault(samplecrm.Fault{Mode: samplecrm.FaultStatus, Status: 503, Until: time.Now().Add(2 * time.Second)})
	const n = 20
	for i := 0; i < n; i++ {
		e.post(newCall(2000+i, phone(2000+i)), endCall(2000+i))
	}
	e.drain(60 * time.Second)
	assert.Len(t, e.crm.Accounts(), n)
	assert.Len(t, e.crm.Records(), n)
	retried := 0
	for i := 0; i < n; i++ {
		v := e.view(fmt.Sprintf("call-%d", 2000+i))
		assert.Len(t, v.Steps, 5)
		for _, en := range v.Timeline {
			if en.Kind == "crm" && en.Status == 503 {
				retried++
			}
			if en.Kind == "job" {
				assert.NotEqual(t, "archived", en.Outcome)
			}
		}
	}
	assert.Positive(t, retried, "the outage was seen")
	info, err := e.inspector.GetQueueInfo(e.queue)
	require.NoError(t, err)
	assert.Zero(t, info.Archived)
}

// A 400 that never clears is retried on the ramp-down schedule (compressed
// here: 20ms doubling to 160ms within a 5s window), then archived. An idle
// asynq worker polls its queue once a second, so attempts come at least
// that far apart here.
func TestPermanent400IsArchivedAfterTheWindow(t *testing.T) {
	pol := Policy{InitialDelay: 20 * time.Millisecond, Factor: 2, MaxDelay: 160 * time.Millisecond, Window: 5 * time.Second, Statuses: DefaultPolicy().Statuses}
	e := newEnv(t, envOpts{policy: &pol})
	e.crm.SetFault(samplecrm.Fault{Mode: samplecrm.FaultStatus, Status: 400, PathPrefix: "/api/accounts"})
	start := time.Now()
	e.post(newCall(3000, phone(3000)))
	e.drain(30 * time.Second)
	elapsed := time.Since(start)

	archived, err := e.inspector.ListArchivedTasks(e.queue)
	require.NoError(t, err)
	require.Len(t, archived, 1)
	assert.Contains(t, archived[0].LastErr, "still failing")
	assert.Contains(t, archived[0].LastErr, "400")
	assert.GreaterOrEqual(t, elapsed, 4*time.Second, "it kept trying for the window")

	v := e.view("call-3000")
	var outcomes []string
	var atts []time.Time
	for _, en := range v.Timeline {
		if en.Kind == "job" {
			outcomes = append(outcomes, en.Outcome)
			atts = append(atts, en.At)
		}
	}
	require.GreaterOrEqual(t, len(outcomes), 5)
	assert.Equal(t, "archived", outcomes[len(outcomes)-1])
	assert.Equal(t, "retry in 20ms", outcomes[0])
	assert.Equal(t, "retry in 40ms", outcomes[1])
	assert.Equal(t, "retry in 80ms", outcomes[2])
	assert.Equal(t, "retry in 160ms", outcomes[3])
	for i := 1; i < len(atts); i++ {
		gap := atts[i].Sub(atts[i-1])
		assert.GreaterOrEqual(t, gap, pol.Delay(i-1)-5*time.Millisecond, "retry %d came too early", i)
	}
	assert.Empty(t, e.crm.Accounts())
}

func TestOtherErrorsAreArchivedAtOnce(t *testing.T) {
	for _, status := range []int{401, 404, 500} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			e := newEnv(t, envOpts{})
			e.crm.SetFault(samplecrm.Fault{Mode: samplecrm.FaultStatus, Status: status, PathPrefix: "/api/records"})
			e.post(newCall(4000, phone(4000)))
			e.drain(20 * time.Second)
			archived, err := e.inspector.ListArchivedTasks(e.queue)
			require.NoError(t, err)
			require.Len(t, archived, 1)
			assert.Equal(t, 0, archived[0].Retried)
			assert.Contains(t, archived[0].LastErr, "not retryable")
			v := e.view("call-4000")
			assert.NotEmpty(t, v.CRM.AccountID, "the account step before it stays done")
			assert.Equal(t, "archived", v.Timeline[len(v.Timeline)-1].Outcome)
		})
	}
}

func TestSecretsStayOutOfTimelineAndLogs(t *testing.T) {
	const pw, hv = "pw-Zq8Xs3cret", "hdr-Kk29s3cret"
	cases := map[string]envOpts{
		"basic": {crm: samplecrm.Options{BasicUser: "crmsync", BasicPassword: pw}, auth: func(a *crm.Auth) {
			a.Type, a.Username, a.Password = "basic", "crmsync", crmsync.Secret(pw)
		}},
		"header": {crm: samplecrm.Options{HeaderName: "X-Api-Key", HeaderValue: hv}, auth: func(a *crm.Auth) {
			a.Type, a.Headers = "header", []crm.HeaderPair{{Key: "X-Api-Key", Value: crmsync.Secret(hv)}}
		}},
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			pol := Policy{InitialDelay: 10 * time.Millisecond, Factor: 2, MaxDelay: 20 * time.Millisecond, Window: 200 * time.Millisecond, Statuses: DefaultPolicy().Statuses}
			o.policy = &pol
			e := newEnv(t, o)
			e.post(newCall(5000, phone(5000)))
			e.drain(20 * time.Second)
			e.crm.SetFault(samplecrm.Fault{Mode: samplecrm.FaultStatus, Status: 400, PathPrefix: "/api/records"})
			e.post(endCall(5000))
			e.drain(20 * time.Second)
			require.Len(t, e.crm.Records(), 1)
			b, err := json.Marshal(e.view("call-5000"))
			require.NoError(t, err)
			archived, err := e.inspector.ListArchivedTasks(e.queue)
			require.NoError(t, err)
			require.Len(t, archived, 1)
			for _, where := range []string{string(b), e.logs.String(), archived[0].LastErr} {
				assert.NotContains(t, where, pw)
				assert.NotContains(t, where, hv)
			}
		})
	}
}

func TestEnqueueNeedsASession(t *testing.T) {
	e := newEnv(t, envOpts{noWorker: true})
	acc := e.post(`{"type":"Agent_Login","data":{"agent_id":1}}`)
	require.Len(t, acc, 1)
	assert.Equal(t, "none", acc[0].Action)
	assert.Empty(t, acc[0].TaskID)
	_, err := e.inspector.GetQueueInfo(e.queue)
	assert.True(t, err != nil || func() bool { i, _ := e.inspector.GetQueueInfo(e.queue); return i.Size == 0 }())
}

var _ asynq.Handler = (*Processor)(nil)
