package lookup_test

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/connectors/crm/lookup"
)

// compile compiles cfg and fails the test on error.
func compile(tb testing.TB, cfg lookup.Config) *lookup.URLs {
	tb.Helper()
	u, err := lookup.Compile(cfg)
	require.NoError(tb, err)
	require.NotNil(tb, u)
	return u
}

// parseURL parses a rendered URL and fails the test when net/url refuses it.
func parseURL(tb testing.TB, raw string) *url.URL {
	tb.Helper()
	require.NotEmpty(tb, raw)
	u, err := url.Parse(raw)
	require.NoError(tb, err, "rendered URL must parse")
	return u
}

// fullSession has every field set to a distinct value.
func fullSession() lookup.Session {
	return lookup.Session{
		ANI:         "+14155550100",
		CUID:        "cuid-42",
		Email:       "ada@example.com",
		MenuPath:    "Orders/Order confirmation/Order info",
		MenuID:      "17",
		Channel:     "voice_call",
		Type:        "IVR_Call",
		AccountID:   "tmp-9",
		PhoneNumber: "+14155550111",
	}
}
