package pega_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/routing/pega"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fuzzHandler is the endpoints over a recorder, served in process: the
// fuzzer runs it thousands of times a second.
func fuzzHandler(tb testing.TB) http.Handler {
	tb.Helper()
	s, err := pega.New(newRecorder(), pega.Config{
		BearerTokens: []crmsync.Secret{testToken},
		MaxBodyBytes: 4 << 10,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(tb, err)
	return s.Handler()
}

func serve(h http.Handler, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func seed(f *testing.F, bodies ...[]byte) {
	for _, b := range bodies {
		f.Add(b)
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for _, name := range eventExamples(f) {
		f.Add(example(f, filepath.Join("events", name)))
	}
	for _, bad := range badEvents {
		f.Add(bad.body)
	}
	seed(f, []byte(`{"_agent_name":"a","_event_name":"QueuesJoined","_queue_name":";;;"}`),
		[]byte(`{"\u005fagent_name":"a","_event_name":"Requeuing","_conversation_id":"c\u0031"}`))
	h := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := pega.DecodeEvent(body)
		if err == nil {
			// What decodes is what the engine may trust.
			assert.Greater(t, int(ev.Kind), 0)
			assert.NoError(t, pega.ValidateID(ev.Agent))
			for _, id := range []string{ev.Conversation, ev.Queue, ev.TransferredFromAgent,
				ev.TransferredToAgent, ev.TransferredFromQueue, ev.TransferredToQueue} {
				if id != "" {
					assert.NoError(t, pega.ValidateID(id))
				}
			}
			for _, q := range ev.Queues {
				assert.NoError(t, pega.ValidateID(q))
			}
		} else {
			assert.Equal(t, crmsync.EINVALID, crmsync.ErrorCode(err), "%v", err)
		}
		w := serve(h, pega.EventsPath, body)
		assert.Less(t, w.Code, 500, "%s", w.Body)
		if err == nil && len(body) <= 4<<10 {
			assert.Equal(t, http.StatusOK, w.Code, "%s", w.Body)
		} else {
			assert.GreaterOrEqual(t, w.Code, 400)
		}
	})
}

func FuzzDecodeRouteRequest(f *testing.F) {
	f.Add(example(f, "route/request.json"))
	for _, bad := range badRoutes {
		f.Add(bad.body)
	}
	seed(f, []byte(`{"_conversation_id":"c","_queue_name":"q","_source":"a b","_priority_queuing":false,"x":[1,{"y":null}]}`))
	h := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := pega.DecodeRouteRequest(body)
		if err == nil {
			assert.NoError(t, pega.ValidateID(req.Conversation))
			assert.NoError(t, pega.ValidateID(req.Queue))
			assert.NotEmpty(t, req.Source)
			if req.PreferredAgent != "" {
				assert.NoError(t, pega.ValidateID(req.PreferredAgent))
			}
		} else {
			assert.Equal(t, crmsync.EINVALID, crmsync.ErrorCode(err), "%v", err)
		}
		w := serve(h, pega.RoutePath, body)
		assert.Less(t, w.Code, 500, "%s", w.Body)
		if err == nil && len(body) <= 4<<10 {
			assert.Equal(t, http.StatusOK, w.Code, "%s", w.Body)
		} else {
			assert.GreaterOrEqual(t, w.Code, 400)
		}
	})
}
