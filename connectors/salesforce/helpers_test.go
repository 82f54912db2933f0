package salesforce_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/connectors/salesforce"
	"github.com/crmsync/crmsync/connectors/salesforce/sftest"
	"github.com/crmsync/crmsync/internal/fakeclock"
)

// Salesforce-shaped ids.
const (
	conv      = "0a6c1e52-7f3b-4c1d-9a8e-2b5d6f7e8c90"
	flowID    = "300Hs00000ABCDE"
	queueID   = "00GHs000001QuEu"
	fallback  = "00GHs000001FaLl"
	queue18ID = "00GHs000001QuEuAAB"
)

type clock = fakeclock.Clock

func newClock() *clock { return fakeclock.New(time.Unix(1_733_130_000, 0)) }

// peer starts an sftest server and a client for it on one fake clock.
func peer(tb testing.TB, mod ...func(*salesforce.Config)) (*sftest.Server, *salesforce.Client, *clock) {
	tb.Helper()
	clk := newClock()
	srv := sftest.Start(tb, clk.Now)
	cfg := srv.ClientConfig(tb, clk.Now)
	for _, m := range mod {
		m(&cfg)
	}
	c, err := salesforce.New(cfg)
	require.NoError(tb, err)
	return srv, c, clk
}
