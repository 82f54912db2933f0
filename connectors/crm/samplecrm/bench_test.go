package samplecrm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkSessionRequests serves, per op, the six requests a call session
// makes (find account, create account, create record, two comments, update
// record), straight into the handler without a network, beside a handler
// that only reads the body and writes a fixed answer: the sample CRM's own
// cost per session, measured in the same run.
func BenchmarkSessionRequests(b *testing.B) {
	type req struct{ method, path, ctype, body string }
	session := func(i int) []req {
		return []req{
			{"GET", fmt.Sprintf("/api/accounts?q=%%28Phone%%3Aequals%%3A%%2A415%%2A200%%2A%04d%%29+or+%%28Email%%3Aequals%%3Acaller%d%%40example.com%%29", i, i), "", ""},
			{"POST", "/api/accounts", "application/json", fmt.Sprintf(`{"account":{"name":"Caller %d","first_name":"Caller","last_name":"%d","phone":"+1 415 200 %04d","email":"caller%d@example.com","custom_user_id":"caller%d"}}`, i, i, i, i, i)},
			{"POST", "/api/records", "application/json", `{"account_id":"ACCOUNT","subject":"Call 1 (Voice Inbound) with Caller","description":"Session: call-1\nSession type: Voice Inbound","phone":"+1 415 200 0001","source_type":"voice_call","agent":"james.bond@agents.co"}`},
			{"POST", "/api/records/RECORD/comments", "application/json", `{"comment":"Call 1 started, answered by james.bond@agents.co, queue Developers / James."}`},
			{"POST", "/api/records/RECORD/comments", "application/json", `{"comment":"Call 1 ended. Duration 05:03. Hold 00:20. Wait 00:41. Disconnected by end_user."}`},
			{"PATCH", "/api/records/RECORD", "application/json", `{"subject":"Call 1","description":"Session: call-1","call_duration":"05:03","hold_time":"00:20","wait_time":"00:41","disconnected_by":"end_user"}`},
		}
	}
	serve := func(h http.Handler, r req, idem string) *httptest.ResponseRecorder {
		hr := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
		hr.Header.Set("Accept", "application/json")
		hr.Header.Set("User-Agent", "crmsync")
		if r.ctype != "" {
			hr.Header.Set("Content-Type", r.ctype)
		}
		if idem != "" && r.method == "POST" {
			hr.Header.Set("Idempotency-Key", idem)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, hr)
		return w
	}
	id := func(b *testing.B, w *httptest.ResponseRecorder) string {
		var v struct {
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil || v.Data.ID == "" {
			b.Fatalf("status %d, body %s", w.Code, w.Body.String())
		}
		return v.Data.ID
	}
	b.Run("samplecrm", func(b *testing.B) {
		s := New(Options{})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			rs := session(i)
			serve(s, rs[0], "")
			acc := id(b, serve(s, rs[1], fmt.Sprintf("k%d:account", i)))
			rs[2].body = strings.Replace(rs[2].body, "ACCOUNT", acc, 1)
			rec := id(b, serve(s, rs[2], fmt.Sprintf("k%d:record", i)))
			for j, r := range rs[3:] {
				r.path = strings.Replace(r.path, "RECORD", rec, 1)
				if w := serve(s, r, fmt.Sprintf("k%d:%d", i, j)); w.Code >= 300 {
					b.Fatalf("%s %s: %d %s", r.method, r.path, w.Code, w.Body.String())
				}
			}
			i++
		}
	})
	b.Run("baseline-fixed-answer", func(b *testing.B) {
		answer := []byte(`{"data":{"id":"1"}}` + "\n")
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			buf := make([]byte, 512)
			for {
				if _, err := r.Body.Read(buf); err != nil {
					break
				}
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(answer)
		})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			for _, r := range session(i) {
				serve(h, r, "k")
			}
			i++
		}
	})
}
