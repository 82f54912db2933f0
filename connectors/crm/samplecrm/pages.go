package samplecrm

import (
	"bytes"
	"html/template"
	"net/http"
)

// The human pages give a CRM lookup URL and an agent's record pop something
// to show. They are read-only and open even when /api needs credentials.

const pageTitle = "crmsync sample CRM (demo)"

// pageLimit caps the lists on a page.
const pageLimit = 200

var pages = template.Must(template.New("pages").Parse(`
{{define "head"}}<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.}} · ` + pageTitle + `</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 52rem; padding: 0 1rem; color: #222; }
header { border-bottom: 2px solid #c60; margin-bottom: 1rem; }
header p { color: #c60; margin: 0 0 .5rem; }
table { border-collapse: collapse; margin-bottom: 1rem; }
th, td { text-align: left; padding: .2rem .8rem .2rem 0; vertical-align: top; }
th { color: #666; font-weight: normal; }
.comment { border-left: 3px solid #ccc; padding-left: .8rem; margin-bottom: .8rem; white-space: pre-wrap; }
.muted { color: #888; }
</style>
</head>
<body>
<header><h1><a href="/">` + pageTitle + `</a></h1>
<p>A demo CRM built into crmsync for the demo config and tests. Data lives in memory only.</p></header>
{{end}}

{{define "foot"}}</body>
</html>
{{end}}

{{define "fields"}}{{range $k, $v := .}}<tr><th>{{$k}}</th><td>{{$v}}</td></tr>{{end}}{{end}}

{{define "records"}}{{if .}}<table>
<tr><th>Id</th><th>Subject</th><th>Status</th><th>Account</th></tr>
{{range .}}<tr><td><a href="/records/{{.ID}}">{{.ID}}</a></td><td>{{.Subject}}</td><td>{{.Status}}</td><td><a href="/accounts/{{.AccountID}}">{{.AccountID}}</a></td></tr>
{{end}}</table>{{else}}<p class="muted">No records.</p>{{end}}{{end}}

{{define "index"}}{{template "head" "Home"}}
<h2>Latest accounts</h2>
{{if .Accounts}}<table>
<tr><th>Id</th><th>Name</th><th>Phone</th><th>Email</th></tr>
{{range .Accounts}}<tr><td><a href="/accounts/{{.ID}}">{{.ID}}</a></td><td>{{.Name}}</td><td>{{.Phone}}</td><td>{{.Email}}</td></tr>
{{end}}</table>{{else}}<p class="muted">No accounts yet.</p>{{end}}
<h2>Latest records</h2>
{{template "records" .Records}}
{{template "foot"}}{{end}}

{{define "account"}}{{template "head" (print "Account " .Account.ID)}}
{{with .Account}}<h2>Account {{.ID}}: {{.Name}}</h2>
<table>
<tr><th>First name</th><td>{{.FirstName}}</td></tr>
<tr><th>Last name</th><td>{{.LastName}}</td></tr>
<tr><th>Phone</th><td>{{.Phone}}</td></tr>
<tr><th>Email</th><td>{{.Email}}</td></tr>
<tr><th>Custom user id</th><td>{{.CustomUserID}}</td></tr>
{{template "fields" .Fields}}
</table>{{end}}
<h2>Records</h2>
{{if .More}}<p class="muted">Showing the latest {{len .Records}} of {{.More}}.</p>{{end}}
{{template "records" .Records}}
{{template "foot"}}{{end}}

{{define "record"}}{{template "head" (print "Record " .Record.ID)}}
{{with .Record}}<h2>Record {{.ID}}: {{.Subject}}</h2>
<table>
<tr><th>Status</th><td>{{.Status}}</td></tr>
<tr><th>Account</th><td><a href="/accounts/{{.AccountID}}">{{.AccountID}}</a>{{with $.Account}} {{.Name}}{{end}}</td></tr>
<tr><th>Description</th><td>{{.Description}}</td></tr>
{{template "fields" .Fields}}
</table>{{end}}
<h2>Comments</h2>
{{range .Comments}}<div class="comment">{{.Body}}<br><span class="muted">#{{.ID}}{{if .HTML}} · sent as HTML{{end}}</span></div>
{{else}}<p class="muted">No comments.</p>{{end}}
<h2>Attachments</h2>
{{if .Attachments}}<ul>
{{range .Attachments}}<li><a href="/api/records/{{.RecordID}}/attachments/{{.ID}}">{{.Filename}}</a> <span class="muted">{{.ContentType}}, {{.Size}} bytes</span></li>
{{end}}</ul>{{else}}<p class="muted">No attachments.</p>{{end}}
{{template "foot"}}{{end}}

{{define "notfound"}}{{template "head" "Not found"}}
<h2>Not found</h2>
<p>{{.}}</p>
{{template "foot"}}{{end}}
`))

func (s *Server) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("samplecrm: render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) indexPage(w http.ResponseWriter, _ *http.Request) {
	accounts, records := s.store.latest(pageLimit / 4)
	s.render(w, http.StatusOK, "index", struct {
		Accounts []*Account
		Records  []*Record
	}{accounts, records})
}

func (s *Server) accountPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	a, records, ok := s.store.accountRecordList(id)
	if !ok {
		s.render(w, http.StatusNotFound, "notfound", "Account "+id+" not found.")
		return
	}
	more := 0
	if len(records) > pageLimit {
		more = len(records)
		records = records[len(records)-pageLimit:]
	}
	s.render(w, http.StatusOK, "account", struct {
		Account *Account
		Records []*Record
		More    int
	}{a, records, more})
}

func (s *Server) recordPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rec, ok := s.store.record(id)
	if !ok {
		s.render(w, http.StatusNotFound, "notfound", "Record "+id+" not found.")
		return
	}
	account, _ := s.store.account(rec.AccountID)
	comments, _ := s.store.comments(id)
	attachments, _ := s.store.attachmentList(id)
	s.render(w, http.StatusOK, "record", struct {
		Record      *Record
		Account     *Account
		Comments    []*Comment
		Attachments []*Attachment
	}{rec, account, comments, attachments})
}
