// Package crm is the generic API client for a customer's homegrown CRM.
// The CRM team describes its REST endpoints in a Config (URL, method,
// parameters as templates, body format, where the answer sits in the
// response, and how to authenticate); a Client runs the flows against
// them: find or create the account, find or create the record, update it,
// comment on it and upload files to it.
//
// The package speaks HTTP to the CRM and nothing else: it knows no job
// queue, no Redis and no HTTP API of crmsync. Callers pass session facts
// as templating.Values and get ids, lookup URLs and classified errors
// (HTTPError, TransportError, ResponseError) back.
package crm
