package templating

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// Mode says whether a value is rendered for a search (find endpoints) or a
// create/update. It matters only for phone numbers in the Automatic format.
type Mode uint8

// The modes. Create is the zero value.
const (
	Create Mode = iota
	Search
)

// PhoneFormat is the phone number format chosen in the CRM settings. The zero
// value "" behaves as PhoneAutomatic.
type PhoneFormat string

// The phone formats, with how +1 222 333 4444 renders in each.
const (
	PhoneAutomatic       PhoneFormat = "automatic"         // create "+1 222 333 4444", search "*222*333*4444"
	PhoneE164            PhoneFormat = "e164"              // +12223334444
	PhoneUSLocal         PhoneFormat = "us_local"          // 2223334444
	PhoneUSLocalStandard PhoneFormat = "us_local_standard" // (222) 333-4444
	PhoneInternational   PhoneFormat = "international"     // +1 222 333 4444
)

var phoneFormats = []PhoneFormat{PhoneAutomatic, PhoneE164, PhoneUSLocal, PhoneUSLocalStandard, PhoneInternational}

// defaultRegion applies to numbers written without a leading +.
const defaultRegion = "US"

// ErrPhoneNumber is wrapped by FormatPhone when the input is not a phone
// number.
var ErrPhoneNumber = errors.New("not a phone number")

// ParsePhoneFormat reads a format name from configuration. The empty string
// means PhoneAutomatic; case and surrounding spaces are ignored.
func ParsePhoneFormat(s string) (PhoneFormat, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return PhoneAutomatic, nil
	}
	for _, f := range phoneFormats {
		if strings.EqualFold(s, string(f)) {
			return f, nil
		}
	}
	names := make([]string, len(phoneFormats))
	for i, f := range phoneFormats {
		names[i] = string(f)
	}
	return "", fmt.Errorf("templating: unknown phone format %q (valid: %s)", s, strings.Join(names, ", "))
}

// FormatPhone renders raw in format f. Numbers without a leading + are read
// as US numbers. Only the shape of the number is checked, not whether it is
// assigned, so a made-up area code such as 222 still formats. An empty or
// blank raw gives "" and no error; anything that is not a phone number gives
// an error wrapping ErrPhoneNumber.
//
// For numbers outside North America the US-only formats fall back to the
// number's own national form: PhoneUSLocal gives the digits as dialled inside
// that country (+44 20 7946 0958 gives 02079460958) and PhoneUSLocalStandard
// gives that country's national layout (020 7946 0958).
//
// Extensions are dropped: none of the formats has a place for them, and CRMs
// match callers on the number alone.
func FormatPhone(raw string, f PhoneFormat, m Mode) (string, error) {
	p, err := formatPhone(raw, f)
	if err != nil {
		return "", err
	}
	if m == Search {
		return p.search, nil
	}
	return p.create, nil
}

// phone holds both renderings of one number so NewValues formats it once.
type phone struct {
	create, search string
}

func formatPhone(raw string, f PhoneFormat) (phone, error) {
	key := string(f) + "\x00" + raw
	if p, ok := phones.get(key); ok {
		return p, nil
	}
	p, err := formatPhoneUncached(raw, f)
	if err == nil {
		phones.put(key, p)
	}
	return p, err
}

// phoneCache remembers recent formatting results: a session's values are
// rebuilt for each of its events, and parsing a number is by far the
// dearest part of that. It is bounded and simply starts over when full.
type phoneCache struct {
	mu sync.Mutex
	m  map[string]phone
}

const phoneCacheSize = 4096

var phones = &phoneCache{m: make(map[string]phone)}

func (c *phoneCache) get(k string) (phone, bool) {
	c.mu.Lock()
	p, ok := c.m[k]
	c.mu.Unlock()
	return p, ok
}

func (c *phoneCache) put(k string, p phone) {
	c.mu.Lock()
	if len(c.m) >= phoneCacheSize {
		clear(c.m)
	}
	c.m[k] = p
	c.mu.Unlock()
}

func formatPhoneUncached(raw string, f PhoneFormat) (phone, error) {
	if f == "" {
		f = PhoneAutomatic
	}
	if !validPhoneFormat(f) {
		return phone{}, fmt.Errorf("templating: unknown phone format %q", string(f))
	}
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return phone{}, nil
	}
	num, err := parsePhone(raw)
	if err != nil {
		return phone{}, fmt.Errorf("templating: format phone: %w: %w", ErrPhoneNumber, err)
	}
	if !phonenumbers.IsPossibleNumber(num) {
		return phone{}, fmt.Errorf("templating: format phone: %w: wrong number of digits", ErrPhoneNumber)
	}
	num.Extension = nil

	var s string
	switch f {
	case PhoneE164:
		s = phonenumbers.Format(num, phonenumbers.E164)
	case PhoneUSLocal:
		s = digitsOnly(phonenumbers.Format(num, phonenumbers.NATIONAL))
	case PhoneUSLocalStandard:
		s = phonenumbers.Format(num, phonenumbers.NATIONAL)
	case PhoneInternational:
		s = strings.Join(internationalGroups(num), " ")
	case PhoneAutomatic:
		groups := internationalGroups(num)
		return phone{
			create: strings.Join(groups, " "),
			// The country code is left out so the search matches however
			// the CRM stored the number's prefix.
			search: "*" + strings.Join(groups[1:], "*"),
		}, nil
	}
	return phone{create: s, search: s}, nil
}

// parsePhone wraps the library parser so that a panic on odd input, which
// would take down a whole request, becomes an ordinary error.
func parsePhone(raw string) (num *phonenumbers.PhoneNumber, err error) {
	defer func() {
		if r := recover(); r != nil {
			num, err = nil, fmt.Errorf("phone parser failed: %v", r)
		}
	}()
	return phonenumbers.Parse(raw, defaultRegion)
}

// internationalGroups returns the country code with its + and then the
// national digit groups, as the library lays out the international format.
// The library separates groups with spaces or dashes depending on the
// country; the vendor's formats want single spaces, so only the grouping is
// kept.
func internationalGroups(num *phonenumbers.PhoneNumber) []string {
	s := phonenumbers.Format(num, phonenumbers.INTERNATIONAL)
	groups := strings.FieldsFunc(s, func(r rune) bool {
		return (r < '0' || r > '9') && r != '+'
	})
	if len(groups) < 2 {
		// Not expected from the library; keep the digits rather than lose them.
		cc := fmt.Sprintf("+%d", num.GetCountryCode())
		return []string{cc, phonenumbers.GetNationalSignificantNumber(num)}
	}
	return groups
}

func digitsOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

func validPhoneFormat(f PhoneFormat) bool {
	for _, g := range phoneFormats {
		if f == g {
			return true
		}
	}
	return false
}
