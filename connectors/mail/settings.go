package mail

import "strings"

// Settings is one level of the outcome email configuration: the global
// setting or one queue's.
type Settings struct {
	// Enabled is "Send session outcome via Email". False: off.
	Enabled bool `yaml:"enabled" json:"enabled"`
	// To is the one address the email goes to. Empty: no address.
	To string `yaml:"to" json:"to"`
}

// Recipient applies the inheritance table of the outcome email settings
// and reports where a session's email goes, if anywhere. queue is nil when
// the session has no queue or its queue has no settings of its own; that
// counts as a queue that is not enabled.
//
//	global off, queue off: no email
//	global off, queue on:  the queue's address (the queue overrides)
//	global on,  queue off: the global address (the queue inherits)
//	global on,  queue on:  the queue's address; no email when it is empty
//
// An enabled level whose address is empty sends nothing rather than
// falling back to the other level. The address is returned trimmed but not
// checked; Send checks it.
func Recipient(global Settings, queue *Settings) (to string, send bool) {
	if queue != nil && queue.Enabled {
		to = strings.TrimSpace(queue.To)
		return to, to != ""
	}
	if global.Enabled {
		to = strings.TrimSpace(global.To)
		return to, to != ""
	}
	return "", false
}
