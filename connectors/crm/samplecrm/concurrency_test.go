package samplecrm

import (
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConcurrentSessions runs many find-or-create flows at once, with
// inspection calls in between, so -race can see the locking.
func TestConcurrentSessions(t *testing.T) {
	c := start(t, Options{})
	const workers, sessions = 16, 25

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for s := range sessions {
				phone := fmt.Sprintf("+1 555 %03d %04d", w, s)
				wildcard := fmt.Sprintf("*555*%03d*%04d", w, s)
				r := c.call(t, http.MethodGet, "/api/accounts?phone="+url.QueryEscape(wildcard), nil)
				if !assert.Equal(t, http.StatusOK, r.Status) || !assert.Empty(t, r.items(t)) {
					return
				}
				account := c.mustCreate(t, "/api/accounts", fmt.Sprintf(`{"name":"w%d s%d","phone":%q}`, w, s, phone))
				r = c.call(t, http.MethodGet, "/api/accounts?phone="+url.QueryEscape(wildcard), nil)
				assert.Equal(t, []string{account}, r.ids(t))

				record := c.mustCreate(t, "/api/records", fmt.Sprintf(`{"contactId":%q,"subject":"session"}`, account))
				c.mustCreate(t, "/api/records/"+record+"/comments", `{"comment":"call started"}`)
				c.mustCreate(t, "/api/records/"+record+"/attachments", `{"file":"aGk="}`)
				r = c.call(t, http.MethodPatch, "/api/records/"+record, `{"status":"closed"}`)
				assert.Equal(t, http.StatusOK, r.Status)
				assert.Len(t, c.Comments(record), 1)
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			_ = c.Accounts()
			_ = c.Records()
			_ = c.Requests()
		}
	})
	wg.Wait()

	const total = workers * sessions
	accounts := c.Accounts()
	require.Len(t, accounts, total)
	for i, a := range accounts {
		assert.Equal(t, itoa(i+1), a.ID)
	}
	records := c.Records()
	require.Len(t, records, total)
	byID := map[string]Account{}
	for _, a := range accounts {
		byID[a.ID] = a
	}
	for _, r := range records {
		assert.Equal(t, StatusClosed, r.Status)
		assert.Contains(t, byID, r.AccountID)
		assert.Len(t, c.Attachments(r.ID), 1)
	}
}
