package templating

import (
	"strconv"
	"strings"
	"time"
)

// Input holds one session's raw facts; NewValues derives the rest.
type Input struct {
	AgentID, AgentCustomID, AgentEmail                  string
	Name, UjetID, Email, SessionType, Phone             string
	CallID, ChatID, Lang, CustomUserID, SessionID       string
	MenuPath, MenuID, OutboundPhone, QueueName, QueueID string
	SmartActionSessionID, Rating, Feedback              string
	CallDuration, HoldTime, WaitTime                    *time.Duration // nil: unknown, renders empty
	DeviceType, DisconnectedBy, Channel, Type           string
	TicketSubject, TicketDescription                    string
	AccountID, RecordID                                 string
}

// Values is the per-request variable set. It is a plain value: copying it is
// cheap and gives an independent set, and reading it from many goroutines at
// once is safe. The zero Values has every variable empty.
type Values struct {
	vals [NumVars]string
	// Search renderings of the two phone variables; they differ from vals
	// only in the Automatic format.
	phoneSearch, outboundSearch string
	format                      PhoneFormat
}

// NewValues derives every variable from in. Phone numbers are formatted here,
// for both modes, so that executing templates stays cheap; a phone number
// that cannot be parsed is kept exactly as given rather than dropped.
func NewValues(in Input, f PhoneFormat) Values {
	v := Values{format: f}
	s := &v.vals
	s[AgentID] = in.AgentID
	s[AgentCustomID] = in.AgentCustomID
	s[AgentEmail] = in.AgentEmail
	s[Name] = in.Name
	s[FirstName], s[LastName] = splitName(in.Name)
	s[UjetID] = in.UjetID
	s[Email] = in.Email
	s[SessionType] = in.SessionType
	s[CallID] = in.CallID
	s[ChatID] = in.ChatID
	s[Lang] = in.Lang
	s[CustomUserID] = in.CustomUserID
	if s[CustomUserID] == "" {
		s[CustomUserID] = emailLocalPart(in.Email)
	}
	s[AccountID] = in.AccountID
	s[RecordID] = in.RecordID
	s[SessionID] = in.SessionID
	s[MenuPath] = in.MenuPath
	s[QueueName] = in.QueueName
	s[QueueID] = in.QueueID
	s[SmartActionSessionID] = in.SmartActionSessionID
	s[Rating] = in.Rating
	s[Feedback] = in.Feedback
	s[CallDuration] = formatDuration(in.CallDuration)
	s[HoldTime] = formatDuration(in.HoldTime)
	s[WaitTime] = formatDuration(in.WaitTime)
	s[DeviceType] = in.DeviceType
	s[DisconnectedBy] = in.DisconnectedBy
	s[Channel] = in.Channel
	s[TicketSubject] = in.TicketSubject
	s[TicketDescription] = in.TicketDescription
	s[TicketDescriptionHTML] = TextToHTML(in.TicketDescription)
	s[ANI] = in.Phone
	s[CUID] = s[CustomUserID]
	s[MenuID] = in.MenuID
	s[Type] = in.Type
	v.Set(PhoneNumber, in.Phone)
	v.Set(OutboundPhoneNumber, in.OutboundPhone)
	return v
}

// Set replaces one variable, as flows learn ACCOUNT_ID, RECORD_ID and the
// like. PHONE_NUMBER and OUTBOUND_PHONE_NUMBER take a raw number and are
// formatted like NewValues does; every other variable is stored as given and
// nothing is derived from it again. Set ignores values that are not
// variables.
func (v *Values) Set(x Var, s string) {
	if !x.valid() {
		return
	}
	if x == PhoneNumber || x == OutboundPhoneNumber {
		p, err := formatPhone(s, v.format)
		if err != nil {
			// Keep what the caller had rather than lose it.
			p = phone{create: s, search: s}
		}
		v.vals[x] = p.create
		if x == PhoneNumber {
			v.phoneSearch = p.search
		} else {
			v.outboundSearch = p.search
		}
		return
	}
	v.vals[x] = s
}

// Get returns the rendering of x for mode m, or "" for values that are not
// variables.
func (v *Values) Get(x Var, m Mode) string {
	if v == nil || !x.valid() {
		return ""
	}
	if m == Search {
		switch x {
		case PhoneNumber:
			return v.phoneSearch
		case OutboundPhoneNumber:
			return v.outboundSearch
		}
	}
	return v.vals[x]
}

// splitName gives the first word of name and the rest. The vendor defaults a
// missing last name to "--" so that CRMs requiring one accept the record.
func splitName(name string) (first, last string) {
	name = strings.TrimSpace(name)
	i := strings.IndexFunc(name, isSpace)
	if i < 0 {
		return name, "--"
	}
	first, last = name[:i], strings.TrimSpace(name[i:])
	if last == "" {
		last = "--"
	}
	return first, last
}

func isSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', '\v', '\f':
		return true
	}
	return false
}

// emailLocalPart returns what precedes the last @, which is where the domain
// starts even when the local part is quoted and contains an @ itself.
func emailLocalPart(email string) string {
	i := strings.LastIndexByte(email, '@')
	if i < 0 {
		return ""
	}
	return email[:i]
}

// formatDuration renders mm:ss. Minutes do not wrap into hours, so 75
// minutes 3 seconds is 75:03.
func formatDuration(d *time.Duration) string {
	if d == nil {
		return ""
	}
	secs := int64(*d / time.Second)
	if secs < 0 {
		secs = 0
	}
	b := make([]byte, 0, 8)
	m, s := secs/60, secs%60
	if m < 10 {
		b = append(b, '0')
	}
	b = strconv.AppendInt(b, m, 10)
	b = append(b, ':', byte('0'+s/10), byte('0'+s%10))
	return string(b)
}

var htmlReplacer = strings.NewReplacer(
	"&", "&amp;",
	"<", "&lt;",
	">", "&gt;",
	`"`, "&#34;",
	"'", "&#39;",
	// \r\n is listed before \r so that a Windows line break is one <br>.
	"\r\n", "<br>",
	"\r", "<br>",
	"\n", "<br>",
)

// TextToHTML escapes s for HTML and turns each line break into <br>. It is
// how TICKET_DESCRIPTION_HTML is made, and how comments are converted when
// an endpoint asks for HTML.
func TextToHTML(s string) string {
	return htmlReplacer.Replace(s)
}
