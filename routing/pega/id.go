package pega

import (
	"errors"
	"fmt"
	"strings"
)

// MaxIDLen is the longest id accepted.
const MaxIDLen = 128

// ValidateID checks an agent, queue or conversation id from Pega: 1 to 128
// ASCII letters, digits and "- _ . @ +", starting with a letter or digit,
// with no "..". Pega's CSR ids are e-mail addresses or plain names
// ("sara@pegasystems.com", "Sarah") and its conversation ids hex or
// "BotAgent<hex>_<n>"; all pass. The rule keeps an id safe in a Redis key,
// a URL path segment, a file name and a log line. It is the rule of
// docs/ROUTING.md, so whatever passes here the engine takes too.
func ValidateID(id string) error {
	switch {
	case id == "":
		return errors.New("is empty")
	case len(id) > MaxIDLen:
		return fmt.Errorf("is %d bytes long, more than %d", len(id), MaxIDLen)
	case !isAlnum(id[0]):
		return fmt.Errorf("must start with a letter or a digit, not %q", firstRune(id))
	case strings.Contains(id, ".."):
		return errors.New(`must not contain ".."`)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !isAlnum(c) && !strings.ContainsRune("-_.@+", rune(c)) {
			return fmt.Errorf("holds %q; only letters, digits and - _ . @ + are allowed", firstRune(id[i:]))
		}
	}
	return nil
}

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

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// firstRune is the first character of s for an error message; a byte that
// starts no valid UTF-8 sequence is shown as itself.
func firstRune(s string) string {
	for _, r := range s {
		if r == '\uFFFD' {
			return s[:1]
		}
		return string(r)
	}
	return ""
}
