package crm

import "github.com/crmsync/crmsync/templating"

// PhoneFormat is the configured phone number format, for building the
// variables a request renders with.
func (c *Client) PhoneFormat() templating.PhoneFormat { return c.cfg.PhoneNumberFormat() }
