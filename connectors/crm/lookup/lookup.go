package lookup

import (
	"cmp"
	"slices"
	"strings"

	"github.com/crmsync/crmsync"
)

// Config holds the URL templates. Variables are written {NAME}; a literal
// brace or percent sign is written percent-encoded (%7B, %7D, %25).
type Config struct {
	// IVR is the lookup URL for sessions identified by phone number: voice
	// calls over the phone network and SMS chats. It may use {ANI}, {CUID},
	// {EMAIL}, {MENU_PATH}, {MENU_ID}, {CHANNEL} and {TYPE}. Empty means
	// those sessions get no lookup URL.
	IVR string `yaml:"ivr_url" json:"ivr_url"`

	// Web is the lookup URL for sessions from the web and mobile SDKs,
	// which usually carry {CUID} and {EMAIL} rather than a phone number. It
	// takes the same variables as IVR. Empty means those sessions get no
	// lookup URL.
	Web string `yaml:"web_url" json:"web_url"`

	// OpenCustom maps a queue (its id or its menu path, matched exactly) to
	// the screen pop opened when the contact is not found. It may use
	// {ACCOUNT_ID} and {PHONE_NUMBER}. A nil map, a missing queue or an
	// empty URL means that queue has no screen pop.
	OpenCustom map[string]string `yaml:"open_custom_url" json:"open_custom_url"`
}

// Session holds the facts a template may refer to. Values are used as
// given: a caller that wants a particular phone number format applies it
// before rendering.
type Session struct {
	ANI         string // {ANI}: the consumer's phone number
	CUID        string // {CUID}: the custom user id from the SDK
	Email       string // {EMAIL}: the consumer's email
	MenuPath    string // {MENU_PATH}: the queue's whole menu path, such as "Orders/Order info"
	MenuID      string // {MENU_ID}
	Channel     string // {CHANNEL}: "voice_call" or "chat"
	Type        string // {TYPE}: the call or chat type, such as "IVR_Call" or "Web"
	AccountID   string // {ACCOUNT_ID}: the (temporary) CRM account id, Open Custom URL only
	PhoneNumber string // {PHONE_NUMBER}: Open Custom URL only
}

// URLs holds compiled templates. The zero value and nil render nothing.
// It is safe for concurrent use.
type URLs struct {
	ivr, web   *template
	openCustom map[string]*template
}

// Compile parses every template in cfg. Errors are *crmsync.Error with code
// EINVALID whose field is the YAML key (ivr_url, web_url or
// open_custom_url.<queue>); the message names the problem and where it is,
// without repeating the URL, which might hold a credential.
func Compile(cfg Config) (*URLs, error) {
	u := &URLs{}
	var err error
	if u.ivr, err = compileField("ivr_url", cfg.IVR, lookupVars); err != nil {
		return nil, err
	}
	if u.web, err = compileField("web_url", cfg.Web, lookupVars); err != nil {
		return nil, err
	}
	// Sorted so that the same bad config always reports the same queue.
	queues := make([]string, 0, len(cfg.OpenCustom))
	for q := range cfg.OpenCustom {
		queues = append(queues, q)
	}
	slices.SortFunc(queues, cmp.Compare)
	for _, q := range queues {
		if strings.TrimSpace(q) == "" {
			return nil, crmsync.Errorf(crmsync.EINVALID, "open_custom_url", "a queue id or path must not be empty")
		}
		t, err := compileField("open_custom_url."+q, cfg.OpenCustom[q], openCustomVars)
		if err != nil {
			return nil, err
		}
		if t == nil {
			continue
		}
		if u.openCustom == nil {
			u.openCustom = make(map[string]*template, len(queues))
		}
		u.openCustom[q] = t
	}
	return u, nil
}

func compileField(field, src string, allowed []variable) (*template, error) {
	if src == "" {
		return nil, nil
	}
	t, err := parse(src, allowed)
	if err != nil {
		return nil, crmsync.Errorf(crmsync.EINVALID, field, "%s", err.Error())
	}
	return t, nil
}

// Lookup renders the lookup URL for s: the IVR one for sessions from the
// phone network or SMS, the Web one for web and mobile SDK sessions (see
// UsesWeb). It returns "" when that URL is not configured.
func (u *URLs) Lookup(s Session) string {
	if u == nil {
		return ""
	}
	if UsesWeb(s.Channel, s.Type) {
		return u.web.render(&s)
	}
	return u.ivr.render(&s)
}

// OpenCustom renders the screen pop of queue for s, or "" when the queue
// has none.
func (u *URLs) OpenCustom(queue string, s Session) string {
	if u == nil {
		return ""
	}
	return u.openCustom[queue].render(&s)
}

// UsesWeb reports whether a session of this channel and type takes the Web
// lookup URL rather than the IVR one. The vendor's types split as follows:
//
//   - chats: Web and Mobile come from the SDKs (web); SMS comes from a phone
//     number (IVR).
//   - calls: types marked (app) or (web), such as IncomingCall(app) or
//     ScheduledCall(web), were placed through an SDK (web); every other
//     call (IVR_Call, Outbound_Call, OutboundCall(api), IncomingCall(api),
//     Voicemail) runs over the phone network (IVR).
//
// A type outside that list falls back on the channel: a chat is taken to
// come from an SDK, anything else from the phone network. Names compare
// without regard to case.
func UsesWeb(channel, typ string) bool {
	t := strings.ToLower(strings.TrimSpace(typ))
	switch {
	case t == "web" || t == "mobile":
		return true
	case t == "sms":
		return false
	case strings.HasSuffix(t, "(app)") || strings.HasSuffix(t, "(web)"):
		return true
	case isCallType(t):
		return false
	}
	return strings.EqualFold(strings.TrimSpace(channel), "chat")
}

// callTypes are the vendor's call types that run over the phone network,
// lower case.
var callTypes = []string{"outbound_call", "outboundcall(api)", "incomingcall(api)", "ivr_call", "voicemail"}

func isCallType(t string) bool { return slices.Contains(callTypes, t) }
