package templating

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func dur(d time.Duration) *time.Duration { return &d }

func TestNewValues(t *testing.T) {
	in := Input{
		AgentID:              "42",
		AgentCustomID:        "agent-7",
		AgentEmail:           "agent@example.com",
		Name:                 "James Bond",
		UjetID:               "u-1",
		Email:                "james.bond@007",
		SessionType:          "IncomingCall",
		Phone:                "(222) 333-4444",
		CallID:               "c-1",
		ChatID:               "ch-1",
		Lang:                 "en",
		SessionID:            "s-1",
		MenuPath:             "Orders/Order confirmation/Order info",
		MenuID:               "m-9",
		OutboundPhone:        "+442079460958",
		QueueName:            "Orders",
		QueueID:              "q-3",
		SmartActionSessionID: "sa-1",
		Rating:               "5",
		Feedback:             "great",
		CallDuration:         dur(75*time.Minute + 3*time.Second),
		HoldTime:             dur(0),
		DeviceType:           "ios",
		DisconnectedBy:       "agent",
		Channel:              "voice_call",
		Type:                 "IVR_Call",
		TicketSubject:        "Call with James",
		TicketDescription:    "a < b\nand more",
		AccountID:            "acc-1",
		RecordID:             "rec-1",
	}
	v := NewValues(in, PhoneE164)
	want := map[Var]string{
		AgentID:               "42",
		AgentCustomID:         "agent-7",
		AgentEmail:            "agent@example.com",
		Name:                  "James Bond",
		FirstName:             "James",
		LastName:              "Bond",
		UjetID:                "u-1",
		Email:                 "james.bond@007",
		SessionType:           "IncomingCall",
		PhoneNumber:           "+12223334444",
		CallID:                "c-1",
		ChatID:                "ch-1",
		Lang:                  "en",
		CustomUserID:          "james.bond",
		AccountID:             "acc-1",
		RecordID:              "rec-1",
		SessionID:             "s-1",
		MenuPath:              "Orders/Order confirmation/Order info",
		OutboundPhoneNumber:   "+442079460958",
		QueueName:             "Orders",
		QueueID:               "q-3",
		SmartActionSessionID:  "sa-1",
		Rating:                "5",
		Feedback:              "great",
		CallDuration:          "75:03",
		HoldTime:              "00:00",
		WaitTime:              "",
		DeviceType:            "ios",
		DisconnectedBy:        "agent",
		Channel:               "voice_call",
		TicketSubject:         "Call with James",
		TicketDescription:     "a < b\nand more",
		TicketDescriptionHTML: "a &lt; b<br>and more",
		CommentBody:           "",
		FileData:              "",
		AttachmentID:          "",
		ANI:                   "(222) 333-4444",
		CUID:                  "james.bond",
		MenuID:                "m-9",
		Type:                  "IVR_Call",
	}
	require.Len(t, want, int(NumVars)-1, "every variable is checked")
	for x, w := range want {
		t.Run(x.String(), func(t *testing.T) {
			assert.Equal(t, w, v.Get(x, Create), "create")
			assert.Equal(t, w, v.Get(x, Search), "search")
		})
	}
}

func TestNewValuesPhoneModes(t *testing.T) {
	v := NewValues(Input{Phone: "2223334444", OutboundPhone: "+442079460958"}, PhoneAutomatic)
	assert.Equal(t, "+1 222 333 4444", v.Get(PhoneNumber, Create))
	assert.Equal(t, "*222*333*4444", v.Get(PhoneNumber, Search))
	assert.Equal(t, "+44 20 7946 0958", v.Get(OutboundPhoneNumber, Create))
	assert.Equal(t, "*20*7946*0958", v.Get(OutboundPhoneNumber, Search))
	assert.Equal(t, "2223334444", v.Get(ANI, Search), "ANI is the number as given")
}

func TestNewValuesKeepsUnparseablePhone(t *testing.T) {
	for _, f := range phoneFormats {
		t.Run(string(f), func(t *testing.T) {
			v := NewValues(Input{Phone: "anonymous", OutboundPhone: "+1 222"}, f)
			assert.Equal(t, "anonymous", v.Get(PhoneNumber, Create))
			assert.Equal(t, "anonymous", v.Get(PhoneNumber, Search))
			assert.Equal(t, "+1 222", v.Get(OutboundPhoneNumber, Create))
			assert.Equal(t, "+1 222", v.Get(OutboundPhoneNumber, Search))
		})
	}
	t.Run("unknown format", func(t *testing.T) {
		v := NewValues(Input{Phone: "2223334444"}, "bogus")
		assert.Equal(t, "2223334444", v.Get(PhoneNumber, Create))
	})
}

func TestNames(t *testing.T) {
	tests := []struct {
		name, first, last string
	}{
		{"James Bond", "James", "Bond"},
		{"Cher", "Cher", "--"},
		{"", "", "--"},
		{"   ", "", "--"},
		{"  Mary Ann  Smith ", "Mary", "Ann  Smith"},
		{"Zoë\tÅström", "Zoë", "Åström"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewValues(Input{Name: tt.name}, PhoneE164)
			assert.Equal(t, tt.name, v.Get(Name, Create))
			assert.Equal(t, tt.first, v.Get(FirstName, Create))
			assert.Equal(t, tt.last, v.Get(LastName, Create))
		})
	}
}

func TestCustomUserID(t *testing.T) {
	tests := []struct {
		desc, id, email, want string
	}{
		{"given", "cu-1", "test.user3@test.co", "cu-1"},
		{"from email", "", "test.user3@test.co", "test.user3"},
		{"quoted local part", "", `"a@b"@test.co`, `"a@b"`},
		{"email without @", "", "test.user3", ""},
		{"nothing", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			v := NewValues(Input{CustomUserID: tt.id, Email: tt.email}, PhoneE164)
			assert.Equal(t, tt.want, v.Get(CustomUserID, Create))
			assert.Equal(t, tt.want, v.Get(CUID, Create))
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   *time.Duration
		want string
	}{
		{nil, ""},
		{dur(0), "00:00"},
		{dur(5 * time.Second), "00:05"},
		{dur(1900 * time.Millisecond), "00:01"},
		{dur(9*time.Minute + 59*time.Second), "09:59"},
		{dur(75*time.Minute + 3*time.Second), "75:03"},
		{dur(100 * time.Hour), "6000:00"},
		{dur(-5 * time.Second), "00:00"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, formatDuration(tt.in))
		})
	}
}

func TestTextToHTML(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"plain", "plain"},
		{"line 1\nline 2", "line 1<br>line 2"},
		{"a\r\nb\rc\n\nd", "a<br>b<br>c<br><br>d"},
		{`<b>"Tom" & 'Jerry'</b>`, "&lt;b&gt;&#34;Tom&#34; &amp; &#39;Jerry&#39;&lt;/b&gt;"},
		{"café ☕", "café ☕"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			assert.Equal(t, tt.want, TextToHTML(tt.in))
		})
	}
}

func TestValuesSet(t *testing.T) {
	v := NewValues(Input{Email: "a@b.c"}, PhoneAutomatic)

	v.Set(AccountID, "acc-1")
	assert.Equal(t, "acc-1", v.Get(AccountID, Create))

	v.Set(PhoneNumber, "2223334444")
	assert.Equal(t, "+1 222 333 4444", v.Get(PhoneNumber, Create))
	assert.Equal(t, "*222*333*4444", v.Get(PhoneNumber, Search))

	v.Set(OutboundPhoneNumber, "unknown")
	assert.Equal(t, "unknown", v.Get(OutboundPhoneNumber, Search))

	v.Set(0, "x")
	v.Set(NumVars, "x")
	v.Set(200, "x")
	assert.Empty(t, v.Get(0, Create))
	assert.Empty(t, v.Get(NumVars, Create))
	assert.Empty(t, v.Get(200, Search))

	var zero Values
	zero.Set(PhoneNumber, "+12223334444")
	assert.Equal(t, "*222*333*4444", zero.Get(PhoneNumber, Search), "the zero Values formats as Automatic")

	var nilValues *Values
	assert.Empty(t, nilValues.Get(Email, Create))
}

func TestValuesCopyIsIndependent(t *testing.T) {
	v := NewValues(Input{AccountID: "old"}, PhoneE164)
	w := v
	w.Set(AccountID, "new")
	w.Set(PhoneNumber, "+12223334444")
	assert.Equal(t, "old", v.Get(AccountID, Create))
	assert.Empty(t, v.Get(PhoneNumber, Create))
	assert.Equal(t, "new", w.Get(AccountID, Create))
}

func TestNewValuesConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				v := NewValues(Input{Phone: "2223334444", OutboundPhone: "+442079460958"}, PhoneAutomatic)
				assert.Equal(t, "*222*333*4444", v.Get(PhoneNumber, Search))
				assert.Equal(t, "+44 20 7946 0958", v.Get(OutboundPhoneNumber, Create))
			}
		})
	}
	wg.Wait()
}
