package templating

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVarString(t *testing.T) {
	tests := []struct {
		v    Var
		want string
	}{
		{AgentID, "AGENT_ID"},
		{CallID, "Call_ID"},
		{ChatID, "Chat_ID"},
		{TicketDescriptionHTML, "TICKET_DESCRIPTION_HTML"},
		{ANI, "ANI"},
		{CUID, "CUID"},
		{MenuID, "MENU_ID"},
		{Type, "TYPE"},
		{0, "Var(0)"},
		{NumVars, "Var(41)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.v.String())
		})
	}
}

func TestEveryVarHasAUniqueName(t *testing.T) {
	seen := map[string]Var{}
	for v := Var(1); v < NumVars; v++ {
		name := v.String()
		require.NotEmpty(t, varNames[v], "Var %d has no name", v)
		prev, dup := seen[strings.ToUpper(name)]
		assert.False(t, dup, "%s is used by %d and %d", name, prev, v)
		seen[strings.ToUpper(name)] = v

		got, ok := LookupVar(name)
		assert.True(t, ok, name)
		assert.Equal(t, v, got, name)
	}
}

func TestLookupVar(t *testing.T) {
	tests := []struct {
		name string
		want Var
		ok   bool
	}{
		{"AGENT_ID", AgentID, true},
		{"agent_id", AgentID, true},
		{"Call_ID", CallID, true},
		{"CALL_ID", CallID, true},
		{"call_id", CallID, true},
		{"CHAT_ID", ChatID, true},
		{"ANI", ANI, true},
		{"cuid", CUID, true},
		{"", 0, false},
		{"{EMAIL}", 0, false},
		{"EMAIL ", 0, false},
		{"NUM_VARS", 0, false},
		{"FOO", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := LookupVar(tt.name)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}
