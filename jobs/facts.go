package jobs

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/templating"
)

// Facts is everything known of a session, merged from its events in the
// order they were handled.
type Facts struct {
	crmsync.EventData
	Transfers   int        `json:"transfers,omitempty"`
	StartedAt   time.Time  `json:"started_at,omitzero"`
	EndedAt     time.Time  `json:"ended_at,omitzero"`
	FirstSeenAt time.Time  `json:"first_seen_at,omitzero"`
	Agents      []Agent    `json:"agents,omitempty"`
	TransferLog []Transfer `json:"transfer_log,omitempty"`
}

// Agent is one agent who took part in the session.
type Agent struct {
	ID       string `json:"id,omitempty"`
	CustomID string `json:"custom_id,omitempty"`
	Email    string `json:"email,omitempty"`
}

// Transfer is one transfer of the session.
type Transfer struct {
	At          time.Time `json:"at"`
	FromAgentID string    `json:"from_agent_id,omitempty"`
	ToAgentID   string    `json:"to_agent_id,omitempty"`
	FromQueueID string    `json:"from_queue_id,omitempty"`
	ToQueueID   string    `json:"to_queue_id,omitempty"`
}

// noteAgent adds an agent the first time it is seen.
func (f *Facts) noteAgent(a Agent) {
	if a.ID == "" && a.Email == "" {
		return
	}
	for i, x := range f.Agents {
		if (a.ID != "" && x.ID == a.ID) || (a.ID == "" && a.Email != "" && x.Email == a.Email) {
			if x.Email == "" {
				f.Agents[i].Email = a.Email
			}
			if x.CustomID == "" {
				f.Agents[i].CustomID = a.CustomID
			}
			return
		}
	}
	f.Agents = append(f.Agents, a)
}

// merge copies every field the event set over what was known: a later
// event knows better (an End_Call carries the final durations).
func (f *Facts) merge(d crmsync.EventData) {
	dst := reflect.ValueOf(&f.EventData).Elem()
	src := reflect.ValueOf(d)
	for i := 0; i < src.NumField(); i++ {
		if v := src.Field(i); !v.IsZero() {
			dst.Field(i).Set(v)
		}
	}
}

func seconds(p *float64) *time.Duration {
	if p == nil {
		return nil
	}
	d := time.Duration(*p * float64(time.Second))
	return &d
}

// values builds the CRM variables of the session.
func (f *Facts) values(k crmsync.SessionKey, pf templating.PhoneFormat) templating.Values {
	d := f.EventData
	in := templating.Input{
		AgentID: d.AgentID, AgentCustomID: d.AgentCustomID, AgentEmail: d.AgentEmail,
		Name: d.EndUserName, UjetID: d.EndUserID, Email: d.EndUserEmail,
		SessionType: d.SessionType, Phone: d.EndUserPhone,
		CallID: d.CallID, ChatID: d.ChatID, Lang: d.Lang, CustomUserID: d.CustomUserID,
		SessionID: k.String(), MenuPath: firstNonEmpty(d.MenuPath, d.QueuePath), MenuID: d.MenuID,
		OutboundPhone: d.OutboundPhoneNumber, QueueName: firstNonEmpty(d.QueueName, d.QueuePath),
		QueueID: d.QueueID, SmartActionSessionID: d.SmartActionSessionID,
		Feedback: d.Feedback, DeviceType: d.DeviceType, DisconnectedBy: d.DisconnectedBy,
		Channel: firstNonEmpty(d.Channel, channelOf(k)), Type: d.SessionType,
		CallDuration: seconds(d.CallDuration), HoldTime: seconds(d.HoldTime), WaitTime: seconds(d.WaitTime),
		TicketSubject: f.subject(k), TicketDescription: f.description(k),
		AccountID: d.CRMAccountID,
	}
	if d.Rating > 0 {
		in.Rating = strconv.Itoa(d.Rating)
	}
	return templating.NewValues(in, pf)
}

func channelOf(k crmsync.SessionKey) string {
	if k.Kind == crmsync.KindCall {
		return "voice_call"
	}
	return "chat"
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func title(k crmsync.SessionKey) string {
	if k.Kind == crmsync.KindCall {
		return "Call " + k.ID
	}
	return "Chat " + k.ID
}

func (f *Facts) subject(k crmsync.SessionKey) string {
	s := title(k)
	if f.SessionType != "" {
		s += " (" + f.SessionType + ")"
	}
	if who := firstNonEmpty(f.EndUserName, f.EndUserPhone, f.EndUserEmail); who != "" {
		s += " with " + who
	}
	return s
}

func (f *Facts) description(k crmsync.SessionKey) string {
	// Built on every task, so without fmt.
	var b strings.Builder
	b.Grow(256)
	line := func(label, v string) {
		if v != "" {
			b.WriteString(label)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteByte('\n')
		}
	}
	line("Session", k.String())
	line("Session type", f.SessionType)
	line("Queue", firstNonEmpty(f.QueuePath, f.QueueName))
	line("Agent", firstNonEmpty(f.AgentEmail, f.AgentID))
	line("End user", f.EndUserName)
	line("Phone", f.EndUserPhone)
	line("Email", f.EndUserEmail)
	line("Call duration", mmss(f.CallDuration))
	line("Hold time", mmss(f.HoldTime))
	line("Wait time", mmss(f.WaitTime))
	line("Disconnected by", f.DisconnectedBy)
	if f.Transfers > 0 {
		line("Transfers", strconv.Itoa(f.Transfers))
	}
	if f.Rating > 0 {
		line("Rating", strconv.Itoa(f.Rating)+"/5")
	}
	line("Feedback", f.Feedback)
	return strings.TrimSuffix(b.String(), "\n")
}

func mmss(p *float64) string {
	if p == nil {
		return ""
	}
	s := int64(*p)
	return pad2(s/60) + ":" + pad2(s%60)
}

// pad2 formats n as fmt's %02d does.
func pad2(n int64) string {
	if n >= 0 && n < 10 {
		return "0" + strconv.FormatInt(n, 10)
	}
	return strconv.FormatInt(n, 10)
}

// commentText is the comment each action leaves on the record.
func commentText(a crmsync.Action, k crmsync.SessionKey, f *Facts, d crmsync.EventData) string {
	t := title(k)
	switch a {
	case crmsync.ActionStart:
		s := t + " started"
		if who := firstNonEmpty(d.AgentEmail, d.AgentID); who != "" {
			s += ", answered by " + who
		}
		if q := firstNonEmpty(d.QueuePath, d.QueueName); q != "" {
			s += ", queue " + q
		}
		return s + "."
	case crmsync.ActionTransfer:
		s := t + " transferred"
		if from := firstNonEmpty(d.FromAgentEmail, d.FromAgentID); from != "" {
			s += " from agent " + from
		}
		if to := firstNonEmpty(d.ToAgentEmail, d.ToAgentID); to != "" {
			s += " to agent " + to
		}
		if q := firstNonEmpty(d.ToQueuePath, d.ToQueueID); q != "" {
			s += " to queue " + q
		}
		return s + "."
	case crmsync.ActionRating:
		s := t + " rated"
		if d.Rating > 0 {
			s += fmt.Sprintf(" %d/5", d.Rating)
		}
		if d.Feedback != "" {
			s += ". Feedback: " + d.Feedback
		}
		return s + "."
	case crmsync.ActionEnd:
		s := t + " ended."
		if v := mmss(f.CallDuration); v != "" {
			s += " Duration " + v + "."
		}
		if v := mmss(f.HoldTime); v != "" {
			s += " Hold " + v + "."
		}
		if v := mmss(f.WaitTime); v != "" {
			s += " Wait " + v + "."
		}
		if f.DisconnectedBy != "" {
			s += " Disconnected by " + f.DisconnectedBy + "."
		}
		return s
	}
	return t
}

// ValuesFor builds the CRM variables a job would use for a session that has
// seen only ev: what `crmsync check crm` renders requests with.
func ValuesFor(ev crmsync.Event, pf templating.PhoneFormat) templating.Values {
	var f Facts
	f.merge(ev.Data)
	return f.values(ev.Session, pf)
}
