package jobs

import (
	"context"
	"fmt"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/crm/lookup"
)

// AgentEvents publishes an event on one agent's stream, in the format
// docs/ROUTING.md fixes (type and JSON data); it returns the entry id.
// routing/stream.Streams implements it.
type AgentEvents interface {
	Publish(ctx context.Context, agent, typ string, data any) (string, error)
}

// Agent stream event types published by the jobs.
const (
	EventRecordPop     = "CRM_Record_Pop"
	EventLookupURL     = "Custom_Lookup_URL"
	EventOpenCustomURL = "Open_Custom_URL"
)

// RecordPopData is CRM_Record_Pop's data. The adapter page's listener
// reads data.recordUrl, so the key is spelled exactly so.
type RecordPopData struct {
	RecordURL string `json:"recordUrl"`
	Session   string `json:"session"`
}

// publishError is a failed publish to an agent's stream: Redis was not
// reachable, which may clear, so the retry policy retries it.
type publishError struct{ err error }

func (e *publishError) Error() string   { return "publish to agent: " + e.err.Error() }
func (e *publishError) Unwrap() error   { return e.err }
func (e *publishError) Temporary() bool { return true }

// popAgent is the agent whose browser shows the session: the one the
// routing engine chose when the session came through it, else the agent
// the contact center named.
func popAgent(st *State, ev crmsync.Event) string {
	if st.Routing.Agent != "" {
		return st.Routing.Agent
	}
	return firstNonEmpty(ev.Data.AgentID, st.Facts.AgentID)
}

// ScreenPops renders the session's custom lookup URL and its queue's Open
// Custom URL; connectors/crm/lookup.URLs implements it. An empty answer
// means not configured.
type ScreenPops interface {
	Lookup(s lookup.Session) string
	OpenCustom(queue string, s lookup.Session) string
}

// lookupSession is what the URL templates may use of a session. Phone
// numbers go as the contact center gave them.
func lookupSession(st *State, key crmsync.SessionKey) lookup.Session {
	f := &st.Facts
	return lookup.Session{
		ANI: f.EndUserPhone, CUID: f.CustomUserID, Email: f.EndUserEmail,
		MenuPath: firstNonEmpty(f.MenuPath, f.QueuePath), MenuID: f.MenuID,
		Channel: firstNonEmpty(f.Channel, channelOf(key)), Type: f.SessionType,
		AccountID: st.AccountID, PhoneNumber: f.EndUserPhone,
	}
}

// renderScreenPops fills the session's URLs the first time they can be
// rendered: the lookup URL at its start, the Open Custom URL once the CRM
// had to create the account (no contact was found).
func (p *Processor) renderScreenPops(st *State, key crmsync.SessionKey) {
	if p.ScreenPops == nil {
		return
	}
	if st.LookupURL == "" && !st.Facts.StartedAt.IsZero() {
		if u := p.ScreenPops.Lookup(lookupSession(st, key)); u != "" {
			st.LookupURL = u
			st.set(fieldLookupURL, u)
		}
	}
	if st.OpenCustomURL == "" && st.AccountCreated && st.AccountID != "" {
		s := lookupSession(st, key)
		// A queue's screen pop is configured under its id or its path.
		for _, q := range []string{st.Facts.QueueID, st.Facts.MenuPath, st.Facts.QueuePath, st.Facts.QueueName} {
			if q == "" {
				continue
			}
			if u := p.ScreenPops.OpenCustom(q, s); u != "" {
				st.OpenCustomURL = u
				st.set(fieldOpenCustomURL, u)
				break
			}
		}
	}
}

// URLData is the data of Custom_Lookup_URL and Open_Custom_URL.
type URLData struct {
	URL     string `json:"url"`
	Session string `json:"session"`
}

// pop sends what the agent's browser should open, each once per agent:
// the lookup URL, the record, the Open Custom URL. A transfer's new agent
// gets its own.
func (p *Processor) pop(ctx context.Context, st *State, key crmsync.SessionKey, pl Payload, entries *[]Entry) error {
	if p.AgentEvents == nil {
		return nil
	}
	agent := popAgent(st, pl.Event)
	if agent == "" {
		return nil
	}
	pops := []struct {
		step, typ string
		data      any
		ok        bool
	}{
		{"lookup:" + agent, EventLookupURL, URLData{URL: st.LookupURL, Session: key.String()}, st.LookupURL != ""},
		{popStep(agent), EventRecordPop, RecordPopData{RecordURL: st.RecordURL, Session: key.String()}, st.RecordURL != ""},
		{"open_custom:" + agent, EventOpenCustomURL, URLData{URL: st.OpenCustomURL, Session: key.String()}, st.OpenCustomURL != ""},
	}
	for _, x := range pops {
		if !x.ok || st.Done(x.step) {
			continue
		}
		now := p.now()
		// The entry names no URL: a lookup URL may carry a credential.
		e := Entry{At: now.UTC(), Kind: "agent", Event: x.typ, EventID: pl.Event.ID}
		if _, err := p.AgentEvents.Publish(ctx, agent, x.typ, x.data); err != nil {
			e.Outcome, e.Error = "failed", err.Error()
			*entries = append(*entries, e)
			return &publishError{fmt.Errorf("%s to %s: %w", x.typ, agent, err)}
		}
		e.Outcome = "sent to " + agent
		*entries = append(*entries, e)
		st.markDone(x.step, now)
	}
	return nil
}
