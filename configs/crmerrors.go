package configs

import (
	"errors"

	"github.com/crmsync/crmsync/connectors/crm"
)

// crmProblems turns the crm section's compile errors into problems with
// paths below "crm".
func crmProblems(err error) []Problem {
	var ces crm.ConfigErrors
	if !errors.As(err, &ces) {
		return []Problem{{Path: "crm", Reason: err.Error()}}
	}
	out := make([]Problem, 0, len(ces))
	for _, ce := range ces {
		out = append(out, Problem{Path: joinPath("crm", ce.Path), Reason: ce.Reason})
	}
	return out
}
