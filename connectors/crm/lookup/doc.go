// Package lookup builds the links an agent opens to find a session's
// contact in a homegrown CRM: the custom lookup URL (one template for
// sessions that arrive over the phone network or SMS, one for sessions from
// the web and mobile SDKs) and the per-queue Open Custom URL screen pop used
// when no contact was found.
//
// Templates are compiled once when the configuration loads; rendering is a
// pure function of the compiled templates and a Session, safe for
// concurrent use. The package does no I/O and logs nothing, so a link that
// happens to carry a credential cannot leak from here.
package lookup
