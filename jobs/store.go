package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmsync/crmsync"
)

// Store keeps each session's state in Redis: what is known of it, its CRM
// ids, which steps are done, and a timeline of everything done for it. A
// session is changed only by the job holding its lock.
//
// Keys, below the configured prefix:
//
//	session:{kind-id}     hash: facts, CRM ids and URLs, step:*, attempt:*, file:* and out:* fields
//	timeline:{kind-id}    list of JSON entries, the newest last
//	transcript:{kind-id}  a chat's messages, one line each
//	lock:{kind-id}        the lock token of the job working on the session
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	// TTL is how long a session is kept after its last change.
	TTL time.Duration
	// TimelineMax bounds the timeline; older entries are dropped.
	TimelineMax int
	// DisplayCRMURLs makes View show each file's CRM URL rather than its
	// storage URL ("CRM URLs vs External Storage URLs").
	DisplayCRMURLs bool
}

// NewStore returns a store using keys below prefix.
func NewStore(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix, TTL: 30 * 24 * time.Hour, TimelineMax: 1000}
}

// A session's keys share one hash tag, so a Redis Cluster keeps them in one
// slot and the scripts that touch several of them work there too.
func (s *Store) sessionKey(k crmsync.SessionKey) string {
	return s.prefix + "session:{" + k.String() + "}"
}
func (s *Store) timelineKey(k crmsync.SessionKey) string {
	return s.prefix + "timeline:{" + k.String() + "}"
}
func (s *Store) lockKey(k crmsync.SessionKey) string { return s.prefix + "lock:{" + k.String() + "}" }
func (s *Store) transcriptKey(k crmsync.SessionKey) string {
	return s.prefix + "transcript:{" + k.String() + "}"
}

// Hash fields.
const (
	fieldFacts          = "facts"
	fieldAccountID      = "account_id"
	fieldAccountURL     = "account_url"
	fieldRecordID       = "record_id"
	fieldRecordURL      = "record_url"
	fieldRecordPending  = "record_pending"
	fieldCreated        = "created_at"
	fieldUpdated        = "updated_at"
	fieldAccountCreated = "account_created"
	fieldLookupURL      = "custom_lookup_url"
	fieldOpenCustomURL  = "open_custom_url"
	fieldRoutingAgent   = "routing_agent"
	fieldRoutingConv    = "routing_conversation"
	fieldRoutingSeq     = "routing_seq"
	stepPrefix          = "step:"
	attemptPrefix       = "attempt:"
)

// ErrBusy means another job holds the session's lock.
var ErrBusy = errors.New("jobs: session is busy")

// acquire takes the lock, notes the first attempt of the task, and reads
// the session, in one round trip.
var acquireScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('HSETNX', KEYS[2], ARGV[3], ARGV[4])
  redis.call('HSETNX', KEYS[2], 'created_at', ARGV[4])
  return redis.call('HGETALL', KEYS[2])
end
return false
`)

// finish writes the session's changes and timeline, refreshes the TTLs and
// releases the lock if it is still ours, in one round trip.
var finishScript = redis.NewScript(`
-- ARGV: token, ttl, timeline max, n, n field/value pairs,
--       t, t transcript lines, then timeline entries.
local n = tonumber(ARGV[4])
local i = 5
if n > 0 then
  redis.call('HSET', KEYS[2], unpack(ARGV, i, i + 2*n - 1))
end
i = i + 2*n
local t = tonumber(ARGV[i])
i = i + 1
if t > 0 then
  redis.call('RPUSH', KEYS[4], unpack(ARGV, i, i + t - 1))
  redis.call('EXPIRE', KEYS[4], ARGV[2])
end
i = i + t
if i <= #ARGV then
  redis.call('RPUSH', KEYS[3], unpack(ARGV, i, #ARGV))
  redis.call('LTRIM', KEYS[3], -tonumber(ARGV[3]), -1)
  redis.call('EXPIRE', KEYS[3], ARGV[2])
end
redis.call('EXPIRE', KEYS[2], ARGV[2])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 1
`)

// State is a session as read under its lock.
type State struct {
	Key           crmsync.SessionKey
	Facts         Facts
	AccountID     string
	AccountURL    string
	RecordID      string
	RecordURL     string
	RecordPending bool
	Steps         map[string]string
	FirstAttempt  time.Time
	Created       time.Time
	// AccountCreated says the CRM had no contact: crmsync created it.
	AccountCreated bool
	// LookupURL and OpenCustomURL are the session's screen pops, once
	// rendered.
	LookupURL     string
	OpenCustomURL string
	// Routing is the latest routing decision the session heard of (zero
	// when it never came through the routing feed).
	Routing RoutingRef

	token   string
	changes map[string]string
	// transcript holds chat lines to append.
	transcript []string
}

// Done reports whether step is finished.
func (st *State) Done(step string) bool { _, ok := st.Steps[step]; return ok }

// Lock takes the session's lock for ttl and reads its state. attempt names
// the task, so the time of its first attempt is kept. It returns ErrBusy
// when another job holds the lock.
func (s *Store) Lock(ctx context.Context, k crmsync.SessionKey, attempt string, ttl time.Duration, now time.Time) (*State, error) {
	var tok [12]byte
	_, _ = rand.Read(tok[:])
	token := hex.EncodeToString(tok[:])
	nowMS := strconv.FormatInt(now.UnixMilli(), 10)
	res, err := acquireScript.Run(ctx, s.rdb,
		[]string{s.lockKey(k), s.sessionKey(k)},
		token, ttl.Milliseconds(), attemptPrefix+attempt, nowMS).Result()
	if errors.Is(err, redis.Nil) {
		return nil, ErrBusy
	}
	if err != nil {
		return nil, fmt.Errorf("jobs: lock %s: %w", k, err)
	}
	st := &State{Key: k, Steps: map[string]string{}, token: token, changes: map[string]string{}}
	vals, _ := res.([]any)
	for i := 0; i+1 < len(vals); i += 2 {
		f, _ := vals[i].(string)
		v, _ := vals[i+1].(string)
		switch {
		case f == fieldFacts:
			if err := json.Unmarshal([]byte(v), &st.Facts); err != nil {
				return nil, fmt.Errorf("jobs: session %s: facts: %w", k, err)
			}
		case f == fieldAccountID:
			st.AccountID = v
		case f == fieldAccountURL:
			st.AccountURL = v
		case f == fieldRecordID:
			st.RecordID = v
		case f == fieldRecordURL:
			st.RecordURL = v
		case f == fieldRecordPending:
			st.RecordPending = v == "1"
		case f == fieldCreated:
			st.Created = msTime(v)
		case f == fieldAccountCreated:
			st.AccountCreated = v == "1"
		case f == fieldLookupURL:
			st.LookupURL = v
		case f == fieldOpenCustomURL:
			st.OpenCustomURL = v
		case f == fieldRoutingAgent:
			st.Routing.Agent = v
		case f == fieldRoutingConv:
			st.Routing.Conversation = v
		case f == fieldRoutingSeq:
			st.Routing.Seq, _ = strconv.ParseInt(v, 10, 64)
		case f == attemptPrefix+attempt:
			st.FirstAttempt = msTime(v)
		case strings.HasPrefix(f, stepPrefix):
			st.Steps[strings.TrimPrefix(f, stepPrefix)] = v
		}
	}
	return st, nil
}

func msTime(v string) time.Time {
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// set notes fields to write when the lock is released. Unlock runs on
// success and failure alike, so only a process dying mid-job loses them,
// and every step is safe to repeat then: creates find first, and the CRM
// calls carry idempotency keys.
func (st *State) set(fields ...string) {
	for i := 0; i+1 < len(fields); i += 2 {
		st.changes[fields[i]] = fields[i+1]
	}
}

// markDone records a finished step.
func (st *State) markDone(step string, now time.Time) {
	v := now.UTC().Format(time.RFC3339Nano)
	st.Steps[step] = v
	st.set(stepPrefix+step, v)
}

// WriteNow writes fields at once, for a note that must be in Redis before
// the next CRM call is made.
func (s *Store) WriteNow(ctx context.Context, st *State, fields ...string) error {
	if err := s.rdb.HSet(ctx, s.sessionKey(st.Key), fields).Err(); err != nil {
		return fmt.Errorf("jobs: save %s: %w", st.Key, err)
	}
	return nil
}

// Unlock writes the facts and the timeline entries and releases the lock.
func (s *Store) Unlock(ctx context.Context, st *State, entries []Entry, now time.Time) error {
	facts, err := json.Marshal(st.Facts)
	if err != nil {
		return fmt.Errorf("jobs: session %s: %w", st.Key, err)
	}
	args := []any{st.token, int64(s.TTL / time.Second), s.TimelineMax, 2 + len(st.changes),
		fieldFacts, string(facts), fieldUpdated, strconv.FormatInt(now.UnixMilli(), 10)}
	for f, v := range st.changes {
		args = append(args, f, v)
	}
	args = append(args, len(st.transcript))
	for _, l := range st.transcript {
		args = append(args, l)
	}
	var buf []byte
	for i := range entries {
		e := &entries[i]
		if !e.marshalable() {
			if _, err := json.Marshal(e); err != nil {
				return fmt.Errorf("jobs: timeline: %w", err)
			}
		}
		buf = e.appendJSON(buf[:0])
		args = append(args, string(buf))
	}
	err = finishScript.Run(ctx, s.rdb, []string{s.lockKey(st.Key), s.sessionKey(st.Key), s.timelineKey(st.Key), s.transcriptKey(st.Key)}, args...).Err()
	if err != nil {
		return fmt.Errorf("jobs: unlock %s: %w", st.Key, err)
	}
	return nil
}

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// Release gives up the lock without writing anything.
func (s *Store) Release(ctx context.Context, st *State) error {
	if err := releaseScript.Run(ctx, s.rdb, []string{s.lockKey(st.Key)}, st.token).Err(); err != nil {
		return fmt.Errorf("jobs: release %s: %w", st.Key, err)
	}
	return nil
}

// Entry is one line of a session's timeline.
type Entry struct {
	At       time.Time `json:"at"`
	Kind     string    `json:"kind"` // event, crm, job, agent (a pop sent), routing (a Pega assignment)
	Event    string    `json:"event,omitempty"`
	EventID  string    `json:"event_id,omitempty"`
	Endpoint string    `json:"endpoint,omitempty"`
	Method   string    `json:"method,omitempty"`
	URL      string    `json:"url,omitempty"`
	Status   int       `json:"status,omitempty"`
	Duration float64   `json:"duration_ms,omitempty"`
	Attempt  int       `json:"attempt,omitempty"`
	Outcome  string    `json:"outcome,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// View is a session as the HTTP API shows it.
type View struct {
	Session string      `json:"session"`
	Kind    string      `json:"kind"`
	ID      string      `json:"id"`
	Facts   Facts       `json:"data"`
	CRM     CRMView     `json:"crm"`
	Steps   []string    `json:"steps_done"`
	Files   []FileEntry `json:"files"`
	// Routing is the routing decision behind the session, when it came
	// through the routing feed: the agent the engine chose.
	Routing *RoutingRef `json:"routing,omitempty"`
	// RecordPops lists each agent sent the CRM record, and when.
	RecordPops []RecordPop `json:"record_pops,omitempty"`
	Created    time.Time   `json:"created_at"`
	Updated    time.Time   `json:"updated_at"`
	Timeline   []Entry     `json:"timeline"`
}

// CRMView is what the CRM knows the session as.
type CRMView struct {
	AccountID  string `json:"account_id,omitempty"`
	RecordID   string `json:"record_id,omitempty"`
	AccountURL string `json:"account_url,omitempty"`
	RecordURL  string `json:"record_url,omitempty"`
	// CustomLookupURL is the session's lookup URL; OpenCustomURL the
	// queue's screen pop, rendered when no contact was found.
	CustomLookupURL string `json:"custom_lookup_url,omitempty"`
	OpenCustomURL   string `json:"open_custom_url,omitempty"`
}

// RecordPop is one CRM_Record_Pop sent to an agent.
type RecordPop struct {
	Agent string    `json:"agent"`
	At    time.Time `json:"at"`
}

// popStep is the step that records the record pop sent to agent.
func popStep(agent string) string { return "pop:" + agent }

// ErrNotFound means no session by that key.
var ErrNotFound = errors.New("jobs: no such session")

// View reads a session for display, without taking its lock.
func (s *Store) View(ctx context.Context, k crmsync.SessionKey) (*View, error) {
	pipe := s.rdb.Pipeline()
	h := pipe.HGetAll(ctx, s.sessionKey(k))
	tl := pipe.LRange(ctx, s.timelineKey(k), 0, -1)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("jobs: read %s: %w", k, err)
	}
	m := h.Val()
	if len(m) == 0 {
		return nil, ErrNotFound
	}
	v := &View{Session: k.String(), Kind: k.Kind, ID: k.ID, Steps: []string{}, Timeline: []Entry{}}
	if f := m[fieldFacts]; f != "" {
		if err := json.Unmarshal([]byte(f), &v.Facts); err != nil {
			return nil, fmt.Errorf("jobs: session %s: facts: %w", k, err)
		}
	}
	v.CRM = CRMView{AccountID: m[fieldAccountID], RecordID: m[fieldRecordID], AccountURL: m[fieldAccountURL], RecordURL: m[fieldRecordURL],
		CustomLookupURL: m[fieldLookupURL], OpenCustomURL: m[fieldOpenCustomURL]}
	v.Created, v.Updated = msTime(m[fieldCreated]), msTime(m[fieldUpdated])
	for f := range m {
		if strings.HasPrefix(f, stepPrefix) {
			v.Steps = append(v.Steps, strings.TrimPrefix(f, stepPrefix))
		}
	}
	sort.Strings(v.Steps)
	for _, step := range v.Steps {
		if agent, ok := strings.CutPrefix(step, "pop:"); ok {
			at, _ := time.Parse(time.RFC3339Nano, m[stepPrefix+step])
			v.RecordPops = append(v.RecordPops, RecordPop{Agent: agent, At: at})
		}
	}
	if m[fieldRoutingAgent] != "" {
		seq, _ := strconv.ParseInt(m[fieldRoutingSeq], 10, 64)
		v.Routing = &RoutingRef{Conversation: m[fieldRoutingConv], Agent: m[fieldRoutingAgent], Seq: seq}
	}
	v.Files = exportedFrom(m)
	for i := range v.Files {
		f := &v.Files[i]
		f.URL = f.StorageURL
		if (s.DisplayCRMURLs && f.CRMURL != "") || f.URL == "" {
			f.URL = f.CRMURL
		}
	}
	if v.Files == nil {
		v.Files = []FileEntry{}
	}
	for _, raw := range tl.Val() {
		var e Entry
		if json.Unmarshal([]byte(raw), &e) == nil {
			v.Timeline = append(v.Timeline, e)
		}
	}
	return v, nil
}

// AppendTimeline adds entries to a session's timeline without its lock,
// for work that happens outside the session's jobs (a routing callback).
// A session not seen yet is created, so View shows the entries.
func (s *Store) AppendTimeline(ctx context.Context, k crmsync.SessionKey, now time.Time, entries ...Entry) error {
	if len(entries) == 0 {
		return nil
	}
	vals := make([]any, 0, len(entries))
	for i := range entries {
		b, err := json.Marshal(&entries[i])
		if err != nil {
			return fmt.Errorf("jobs: timeline: %w", err)
		}
		vals = append(vals, string(b))
	}
	key := s.timelineKey(k)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.RPush(ctx, key, vals...)
		p.LTrim(ctx, key, -int64(s.TimelineMax), -1)
		p.Expire(ctx, key, s.TTL)
		p.HSetNX(ctx, s.sessionKey(k), fieldCreated, strconv.FormatInt(now.UnixMilli(), 10))
		p.Expire(ctx, s.sessionKey(k), s.TTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("jobs: timeline of %s: %w", k, err)
	}
	return nil
}
