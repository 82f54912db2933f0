// Package mail sends the session outcome email: once a session has
// finished successfully, the CRM gets one message whose subject names the
// session, whose body is the session metadata as JSON and which carries the
// chat transcript as a TXT attachment when there is one. The CRM reads the
// message to update or create its record for the session.
//
// Settings and Recipient decide whether a session gets an email and where
// it goes, following the global and per-queue settings; SMTP describes the
// outgoing mail server and a Sender delivers an Outcome through it. The
// package knows nothing of jobs or schedules: waiting the 15 minutes after
// the session ends and skipping failed or abandoned sessions is the
// caller's business, as is retrying when Retryable says so.
package mail
