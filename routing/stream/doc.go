// Package stream is each agent's live event stream: what the routing
// engine, the pull-mode Lists and the CRM flows want an agent's browser to
// know (offers, list news, record pops), kept in Redis and served to the
// browser as Server-Sent Events.
//
// Each agent has a capped Redis stream, {prefix}agent:{id}:events, whose
// entries hold two fields: t (the event type) and d (its data, JSON). After
// every append the writer publishes the agent's id on {prefix}agent-events.
// That is the whole contract, so a Lua script can publish to an agent as
// well as Go code can (docs/ROUTING.md shows the two calls).
//
// The stream, not the pub/sub message, is the source of truth: a message
// only says "look again". Each process holds one subscription (Run) and
// wakes the connections of the agent a message names; those re-read the
// stream from the last entry they sent. A connection also re-reads on its
// own now and then, so a lost message, a dropped subscription or a process
// that never called Run only delays an event, never loses it. The entry id
// is the SSE event id, which is how a browser that reconnects resumes
// exactly after the last event it saw.
package stream
