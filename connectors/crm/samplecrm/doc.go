// Package samplecrm is the sample CRM that ships with crmsync: a small REST
// CRM kept in memory, served by the crmsync process when the demo config
// turns it on, and used by the tests of other packages as a real HTTP peer:
//
//	srv := httptest.NewServer(samplecrm.New(samplecrm.Options{}))
//
// It is a demo and a test double, not a product. Nothing is persisted, and
// the data model is the smallest one that exercises every crmsync flow:
// accounts hold records, records hold comments and attachments.
//
// The API lives under /api and answers JSON. A single object comes back as
// {"data": {...}} and a search as {"data": {"items": [...]}}, so a flow can
// point its response data location at data.id or data.items.0.id. Request
// bodies may be a flat JSON object (Property), an object wrapped in one named
// object or one-element array (Container Map or Array), or a form.
//
// Routes:
//
//	GET        /api/accounts?id=|phone=|email=|custom_user_id=|name=|q=   search
//	POST       /api/accounts                                        create
//	GET        /api/accounts/{id}
//	PUT, PATCH /api/accounts/{id}                                   merge fields
//	GET        /api/records?id=|account_id=|contactId=|status=|subject=|q=
//	POST       /api/records                                         create; needs an existing account
//	GET        /api/records/{id}
//	PUT, PATCH /api/records/{id}                                    merge fields
//	GET, POST  /api/records/{id}/comments
//	GET, POST  /api/records/{id}/attachments                        multipart or base64
//	GET        /api/records/{id}/attachments/{aid}                  the file
//	GET        /oauth/authorize, POST /oauth/token                  when OAuth is configured
//	GET, POST, DELETE /_control/fail                                faults
//	GET, DELETE       /_control/requests                            the request log
//	GET        /, /accounts/{id}, /records/{id}                     HTML pages for people
//
// Searches AND their parameters. q takes Zoho-style criteria,
// "(Phone:equals:*222*333*4444) or (Email:equals:a@b.c)", evaluated left to
// right. Phones compare by digits; "*" makes a wildcard whose digit groups
// must appear in order. Searches also take limit (default 100, at most 1000)
// and order=asc|desc (by id).
//
// A POST with an Idempotency-Key header is answered once: repeating it on the
// same path replays the first successful answer.
//
// The server can be told to misbehave, from Go through [Server.SetFault] or
// over HTTP through /_control/fail, so that callers can test their retries,
// timeouts and error handling against a real connection.
package samplecrm
