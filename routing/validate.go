package routing

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/crmsync/crmsync"
)

// MaxIDLen is the longest agent, queue, channel or conversation id.
const MaxIDLen = 128

// ValidateID checks an agent, queue, channel or conversation id: 1 to 128
// ASCII letters, digits and "- _ . @ +", starting with a letter or a
// digit, with no "..". Ids come from outside (Pega's agent ids are e-mail
// addresses); the rule keeps them safe in a Redis key, a URL path segment
// and a log line, and lets the scripts put them in JSON unescaped.
func ValidateID(id string) error {
	switch {
	case id == "":
		return errors.New("must not be empty")
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

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// firstRune is the first character of s for an error message; a byte that
// starts no valid UTF-8 sequence is shown as itself.
func firstRune(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return s[:min(n, 1)]
	}
	return string(r)
}

// checkID wraps ValidateID into the error the API returns.
func checkID(field, id string) error {
	if err := ValidateID(id); err != nil {
		return crmsync.Errorf(crmsync.EINVALID, field, "%v", err)
	}
	return nil
}

// Limits on what a caller may store with a conversation or queue.
const (
	maxAttributes    = 64
	maxAttrKeyLen    = 128
	maxAttrValueLen  = 4096
	maxSourceLen     = 128
	maxNameLen       = 256
	maxChannels      = 16
	maxCapacity      = 1000
	maxQueuesOfAgent = 1000
)

// checkText accepts valid UTF-8 without control characters, up to max
// bytes.
func checkText(field, s string, max int) error {
	if len(s) > max {
		return crmsync.Errorf(crmsync.EINVALID, field, "is %d bytes long, more than %d", len(s), max)
	}
	if !utf8.ValidString(s) {
		return crmsync.Errorf(crmsync.EINVALID, field, "is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return crmsync.Errorf(crmsync.EINVALID, field, "holds the control character %q", r)
		}
	}
	return nil
}
