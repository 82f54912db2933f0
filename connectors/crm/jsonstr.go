package crm

import "github.com/crmsync/crmsync/templating"

// appendJSONString appends s as a JSON string, as encoding/json writes it
// with HTML escaping off.
func appendJSONString(b []byte, s string) []byte { return templating.AppendJSONString(b, s) }
