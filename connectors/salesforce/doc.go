// Package salesforce calls Salesforce Bring Your Own Channel for CCaaS's
// route API, the way a partner that owns routing hands a conversation to
// Salesforce (POST route, for a new conversation or a transfer) and clears
// a pending routing that was never taken (DELETE route).
//
// Every call carries a JWT signed with the connected app's private key
// (RS256), the org id, the authorization context (the conversation channel
// definition's developer name) and a fresh RequestId. Errors are typed:
// Retryable says which are worth another try (transport errors, timeouts,
// 429 with its Retry-After, 5xx) and which are final (other 4xx). Package
// sftest is a real HTTP server that plays Salesforce's side for tests.
package salesforce
