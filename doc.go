// Package crmsync holds the domain types every other package shares: the
// contact-center events that come in, the sessions they belong to, error
// codes that map onto HTTP statuses, and the Secret type that keeps
// credentials out of logs. It imports nothing else of the project.
package crmsync
