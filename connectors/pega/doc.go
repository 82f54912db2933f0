// Package pega calls Pega Customer Service's PostRoutingEvents service,
// the way an external router tells Pega which CSR it chose for a
// conversation (third-party routing). The inbound half of the protocol,
// Pega's route requests and routing events, is package routing/pega.
//
// A Fail answer (ErrFail) means Pega refused the assignment and the
// conversation should be routed again; Retryable sorts every other error
// into worth retrying or not. Package pegatest is a real HTTP server that
// plays Pega's side for tests.
package pega
