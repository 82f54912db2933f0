package templating

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// benchSources is a realistic parameter list for a create-record endpoint.
var benchSources = [10]string{
	"{EMAIL}",
	"{PHONE_NUMBER}",
	"(Email:equals:{EMAIL})",
	"Call {Call_ID} from {PHONE_NUMBER}",
	"=DEFAULT_VALUE({AGENT_EMAIL}, crm-integration@example.com)",
	"=CONCAT_OR((Id:equals:{ACCOUNT_ID}), (Phone:equals:{PHONE_NUMBER}), (Email:equals:{EMAIL}))",
	"open",
	"{FIRST_NAME} {LAST_NAME}",
	"=DEFAULT_VALUE({QUEUE_NAME}, General)",
	"{CALL_DURATION}",
}

func benchInput() Input {
	d := 4*time.Minute + 7*time.Second
	return Input{
		AgentID:           "1017",
		AgentEmail:        "",
		Name:              "James Bond",
		Email:             "james.bond@007",
		Phone:             "(222) 333-4444",
		OutboundPhone:     "+442079460958",
		CallID:            "884213",
		SessionID:         "9b2f0f0e-7c1d-4f7e-9a53-1a2b3c4d5e6f",
		QueueName:         "Orders",
		QueueID:           "12",
		CallDuration:      &d,
		Channel:           "voice_call",
		TicketSubject:     "Call with James Bond",
		TicketDescription: "Caller asked about order 1234.\nFollow up <tomorrow> & confirm.",
		AccountID:         testUUID,
	}
}

// benchPlain holds the same facts as plain strings for the hand-written
// baseline.
type benchPlain struct {
	email, phone, callID, agentEmail, accountID  string
	firstName, lastName, queueName, callDuration string
}

func newBenchPlain(v *Values) benchPlain {
	return benchPlain{
		email:        v.Get(Email, Create),
		phone:        v.Get(PhoneNumber, Create),
		callID:       v.Get(CallID, Create),
		agentEmail:   v.Get(AgentEmail, Create),
		accountID:    v.Get(AccountID, Create),
		firstName:    v.Get(FirstName, Create),
		lastName:     v.Get(LastName, Create),
		queueName:    v.Get(QueueName, Create),
		callDuration: v.Get(CallDuration, Create),
	}
}

// baseline renders benchSources the way one would without templates.
func baseline(p *benchPlain, out *[10]string) {
	out[0] = p.email
	out[1] = p.phone
	out[2] = ""
	if p.email != "" {
		out[2] = "(Email:equals:" + p.email + ")"
	}
	out[3] = ""
	if p.callID != "" || p.phone != "" {
		out[3] = "Call " + p.callID + " from " + p.phone
	}
	out[4] = p.agentEmail
	if out[4] == "" {
		out[4] = "crm-integration@example.com"
	}
	var partsBuf [3]string
	parts := partsBuf[:0]
	if p.accountID != "" {
		parts = append(parts, "(Id:equals:"+p.accountID+")")
	}
	if p.phone != "" {
		parts = append(parts, "(Phone:equals:"+p.phone+")")
	}
	if p.email != "" {
		parts = append(parts, "(Email:equals:"+p.email+")")
	}
	out[5] = strings.Join(parts, " or ")
	out[6] = "open"
	out[7] = ""
	if p.firstName != "" || p.lastName != "" {
		out[7] = p.firstName + " " + p.lastName
	}
	out[8] = p.queueName
	if out[8] == "" {
		out[8] = "General"
	}
	out[9] = p.callDuration
}

func benchTemplates() [10]*Template {
	var ts [10]*Template
	for i, src := range benchSources {
		ts[i] = MustParse(src)
	}
	return ts
}

var benchSink [10]string

func TestBaselineMatchesTemplates(t *testing.T) {
	v := NewValues(benchInput(), PhoneE164)
	p := newBenchPlain(&v)
	var want [10]string
	baseline(&p, &want)
	for i, tmpl := range benchTemplates() {
		assert.Equal(t, want[i], tmpl.Execute(&v, Create), benchSources[i])
	}
}

func BenchmarkExecute10(b *testing.B) {
	ts := benchTemplates()
	v := NewValues(benchInput(), PhoneE164)
	b.ReportAllocs()
	for b.Loop() {
		for i, tmpl := range ts {
			benchSink[i] = tmpl.Execute(&v, Create)
		}
	}
}

func BenchmarkExecute10Baseline(b *testing.B) {
	v := NewValues(benchInput(), PhoneE164)
	p := newBenchPlain(&v)
	b.ReportAllocs()
	for b.Loop() {
		baseline(&p, &benchSink)
	}
}

func BenchmarkNewValues(b *testing.B) {
	in := benchInput()
	b.ReportAllocs()
	for b.Loop() {
		v := NewValues(in, PhoneAutomatic)
		benchSink[0] = v.Get(PhoneNumber, Search)
	}
}

func BenchmarkURLExecute(b *testing.B) {
	u := MustParseURL("https://crm.example.com/api/accounts/{ACCOUNT_ID}/records?phone={PHONE_NUMBER}&email={EMAIL}&agent={AGENT_EMAIL}")
	v := NewValues(benchInput(), PhoneE164)
	b.ReportAllocs()
	for b.Loop() {
		benchSink[0], _ = u.Execute(&v, Search)
	}
}
