package mail

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	netmail "net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	gomail "github.com/wneessen/go-mail"
)

// ErrHeaderInjection is returned, before anything is sent, when a value
// that ends up in a header (an address, the subject, the Message-ID or the
// attachment name) holds a CR, LF or other control character.
var ErrHeaderInjection = errors.New("mail: header field holds a line break")

// Outcome is one session's outcome email.
type Outcome struct {
	// MessageID is the caller's deterministic id for the session's email,
	// e.g. "<call-103646.outcome@crmsync>". A resend carries the same id,
	// so the CRM can recognise a duplicate. It is written to the
	// Message-ID header as given; the angle brackets are added when both
	// are missing. Required.
	MessageID string
	// To is the one recipient, as Recipient returned it. Required.
	To string
	// Subject is the subject line, usually built with Subject. Required.
	Subject string
	// Metadata is the session metadata JSON, which becomes the whole body.
	// Compact JSON is indented; JSON that already spans lines is kept as
	// is. Required.
	Metadata []byte
	// Transcript is the chat transcript, attached as a text/plain file when
	// it is non-nil. Nil for calls and other sessions without one.
	Transcript []byte
	// TranscriptName is the attachment's file name, e.g. chat-103646.txt.
	// Required when Transcript is non-nil.
	TranscriptName string
}

// Subject builds the subject line from the session id, its type and its
// queue path, e.g. "Session outcome: call-103646 (Voice Inbound,
// Developers / James)". Empty parts are left out. Control characters are
// removed and runs of white space become one space, so the result is safe
// in a header whatever the contact center sent.
func Subject(session, sessionType, queue string) string {
	var b strings.Builder
	b.WriteString("Session outcome")
	if s := clean(session); s != "" {
		b.WriteString(": ")
		b.WriteString(s)
	}
	var details []string
	for _, d := range []string{sessionType, queue} {
		if d = clean(d); d != "" {
			details = append(details, d)
		}
	}
	if len(details) > 0 {
		b.WriteString(" (")
		b.WriteString(strings.Join(details, ", "))
		b.WriteString(")")
	}
	return b.String()
}

// clean drops control characters and collapses white space; invalid UTF-8
// becomes U+FFFD.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
}

// message checks every field of o and builds the message. Nothing here
// touches the network, so a bad Outcome never reaches the server.
func (o *Outcome) message(from *netmail.Address) (*gomail.Msg, error) {
	id, err := messageID(o.MessageID)
	if err != nil {
		return nil, err
	}
	to, err := parseAddress("to", o.To)
	if err != nil {
		return nil, err
	}
	if err := checkHeader("subject", o.Subject); err != nil {
		return nil, err
	}
	if o.Subject == "" {
		return nil, errors.New("mail: subject is empty")
	}
	if !utf8.ValidString(o.Subject) {
		return nil, errors.New("mail: subject is not valid UTF-8")
	}
	body, err := metadataBody(o.Metadata)
	if err != nil {
		return nil, err
	}
	if o.Transcript != nil {
		if err := checkFileName(o.TranscriptName); err != nil {
			return nil, err
		}
	}

	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	m.FromMailAddress(from)
	m.ToMailAddress(to)
	m.Subject(o.Subject)
	m.SetMessageIDWithValue(id)
	m.SetDate()
	// RFC 3834: keeps vacation responders and the like from answering a
	// message no one will read.
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetBodyString(gomail.TypeTextPlain, body)
	if o.Transcript != nil {
		m.AttachReadSeeker(o.TranscriptName, bytes.NewReader(o.Transcript),
			gomail.WithFileContentType("text/plain; charset=utf-8"))
	}
	return m, nil
}

// messageID checks a Message-ID and returns it without its angle brackets,
// as go-mail adds them. The id must be <left@right>, both sides dot-atoms
// (RFC 5322 section 3.6.4), so it needs no quoting or encoding.
func messageID(id string) (string, error) {
	if err := checkHeader("message id", id); err != nil {
		return "", err
	}
	inner := id
	if strings.HasPrefix(id, "<") && strings.HasSuffix(id, ">") && len(id) >= 2 {
		inner = id[1 : len(id)-1]
	}
	left, right, ok := strings.Cut(inner, "@")
	if !ok || !isDotAtom(left) || !isDotAtom(right) {
		return "", fmt.Errorf("mail: message id %q: want <left@right> with letters, digits, dots and the like only", id)
	}
	return inner, nil
}

func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// parseAddress accepts exactly one address, with or without a display
// name.
func parseAddress(field, s string) (*netmail.Address, error) {
	if err := checkHeader(field, s); err != nil {
		return nil, err
	}
	a, err := netmail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("mail: %s %q is not one email address: %w", field, s, err)
	}
	return a, nil
}

// checkFileName refuses what go-mail would otherwise rewrite to "_", so
// the CRM gets the name the caller chose.
func checkFileName(name string) error {
	if err := checkHeader("transcript name", name); err != nil {
		return err
	}
	switch {
	case name == "":
		return errors.New("mail: transcript name is empty")
	case !utf8.ValidString(name):
		return fmt.Errorf("mail: transcript name %q is not valid UTF-8", name)
	case strings.ContainsAny(name, `"/:<>?\|`):
		return fmt.Errorf(`mail: transcript name %q: none of "/:<>?\| is allowed in a file name`, name)
	}
	return nil
}

// checkHeader refuses CR, LF and every other control character, including
// tab and DEL, in a value bound for a header.
func checkHeader(field, v string) error {
	if hasControl(v) {
		return fmt.Errorf("%w: %s %q", ErrHeaderInjection, field, v)
	}
	return nil
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}

// metadataBody returns the body: the metadata JSON, indented when it is
// compact (has no line break, which in JSON can only be white space
// between tokens), ending in a line break.
func metadataBody(metadata []byte) (string, error) {
	if len(bytes.TrimSpace(metadata)) == 0 {
		return "", errors.New("mail: metadata is empty")
	}
	if !json.Valid(metadata) {
		return "", errors.New("mail: metadata is not valid JSON")
	}
	body := metadata
	if bytes.IndexByte(metadata, '\n') < 0 {
		var b bytes.Buffer
		if err := json.Indent(&b, bytes.TrimSpace(metadata), "", "  "); err != nil {
			return "", fmt.Errorf("mail: metadata: %w", err)
		}
		body = b.Bytes()
	}
	s := string(body)
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s, nil
}
