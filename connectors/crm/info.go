package crm

import "github.com/crmsync/crmsync/templating"

// PhoneFormat is the configured phone number format, for building the
// variables a request renders with.
func (c *Client) PhoneFormat() templating.PhoneFormat { return c.cfg.PhoneNumberFormat() }

// AlwaysCreate reports whether every session gets a new record, so a caller
// must note a create before making it (nothing else would find it again).
func (c *Client) AlwaysCreate() bool { return c.cfg.RecordMode == RecordAlwaysCreate }
