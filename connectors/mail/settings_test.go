package mail

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRecipient(t *testing.T) {
	const (
		globalTo = "crm-all@crm.example"
		queueTo  = "crm-devs@crm.example"
	)
	for _, tc := range []struct {
		name     string
		global   Settings
		queue    *Settings
		wantTo   string
		wantSend bool
	}{
		// The four rows of the inheritance table.
		{"global off, queue off", Settings{Enabled: false, To: globalTo}, &Settings{Enabled: false, To: queueTo}, "", false},
		{"global off, queue on", Settings{Enabled: false, To: globalTo}, &Settings{Enabled: true, To: queueTo}, queueTo, true},
		{"global on, queue off", Settings{Enabled: true, To: globalTo}, &Settings{Enabled: false, To: queueTo}, globalTo, true},
		{"global on, queue on", Settings{Enabled: true, To: globalTo}, &Settings{Enabled: true, To: queueTo}, queueTo, true},
		// The table's proviso: an enabled queue without an address sends nothing.
		{"global on, queue on without address", Settings{Enabled: true, To: globalTo}, &Settings{Enabled: true, To: "  "}, "", false},
		// No queue, or a queue without settings of its own.
		{"global on, no queue", Settings{Enabled: true, To: globalTo}, nil, globalTo, true},
		{"global off, no queue", Settings{Enabled: false, To: globalTo}, nil, "", false},
		{"global on without address, no queue", Settings{Enabled: true}, nil, "", false},
		{"global off without address, queue on", Settings{}, &Settings{Enabled: true, To: " " + queueTo + " "}, queueTo, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			to, send := Recipient(tc.global, tc.queue)
			assert.Equal(t, tc.wantSend, send)
			assert.Equal(t, tc.wantTo, to)
		})
	}
}
