package storage

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrInvalidName is wrapped by the error every backend returns, before it
// touches anything, for a name ValidName refuses.
var ErrInvalidName = errors.New("storage: invalid file name")

// Limits that hold on every backend, so a name that works on one works on
// all: GCS takes at most 1024 bytes, most file systems 255 per element.
const (
	maxNameLength    = 1024
	maxElementLength = 255
)

// ValidName checks a file name before a backend uses it: a non-empty,
// slash-separated path relative to the root, in UTF-8, with no "." or ".."
// element, no empty element, no backslash and no control character, so
// it cannot leave the root on any backend. No element may start with a
// dot either: backends keep their temporary files under such names, and
// List never shows them. Names made by Layout always pass.
func ValidName(name string) error {
	if why := nameProblem(name); why != "" {
		return fmt.Errorf("%w %q: %s", ErrInvalidName, name, why)
	}
	return nil
}

// ValidPrefix checks a List prefix by the same rules: empty (everything),
// a folder ending in a slash, or the start of a valid name.
func ValidPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if why := nameProblem(strings.TrimSuffix(prefix, "/")); why != "" {
		return fmt.Errorf("%w: prefix %q: %s", ErrInvalidName, prefix, why)
	}
	return nil
}

func nameProblem(name string) string {
	switch {
	case name == "":
		return "empty"
	case len(name) > maxNameLength:
		return fmt.Sprintf("longer than %d bytes", maxNameLength)
	case !utf8.ValidString(name):
		return "not valid UTF-8"
	case strings.HasPrefix(name, "/"):
		return "absolute: names are relative to the target's root"
	}
	for _, r := range name {
		switch {
		case r == '\\':
			return "backslash: use '/' between folders"
		case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
			return fmt.Sprintf("control character %q", r)
		}
	}
	for elem := range strings.SplitSeq(name, "/") {
		switch {
		case elem == "":
			return "empty folder name (a doubled or trailing slash)"
		case elem == "." || elem == "..":
			return fmt.Sprintf("%q is not allowed as a folder or file name", elem)
		case elem[0] == '.':
			return fmt.Sprintf("%q starts with a dot, which is kept for temporary files", elem)
		case len(elem) > maxElementLength:
			return fmt.Sprintf("a folder or file name is longer than %d bytes", maxElementLength)
		}
	}
	return ""
}
