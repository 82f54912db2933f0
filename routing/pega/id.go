package pega

import (
	"errors"
	"strings"

	"github.com/crmsync/crmsync/routing"
)

// MaxIDLen is the longest id accepted.
const MaxIDLen = routing.MaxIDLen

// ValidateID checks an agent, queue or conversation id from Pega. It is
// the engine's rule (routing.ValidateID): Pega's CSR ids are e-mail
// addresses or plain names ("sara@pegasystems.com", "Sarah") and its
// conversation ids hex or "BotAgent<hex>_<n>"; all pass, and whatever
// passes here the engine takes too.
func ValidateID(id string) error { return routing.ValidateID(id) }

// validateSource checks _source, the name of a chat or messaging channel
// ("chat", "Facebook"). It is the id rule with spaces allowed inside,
// since a channel's display name may hold them; it is not meant for a key
// as it stands.
func validateSource(s string) error {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return ValidateID(s)
	}
	for part := range strings.SplitSeq(s, " ") {
		if part == "" {
			return errors.New("holds two spaces in a row")
		}
	}
	return ValidateID(strings.ReplaceAll(s, " ", "_"))
}
