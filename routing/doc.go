// Package routing is crmsync's push-mode routing engine: queues, agents
// with presence and per-channel capacity, conversations that wait in
// queues, offers with timers, transfers, requeues, preferred agents, wait
// estimates and queue positions, and the outbox through which the rest of
// crmsync hears what the engine decided.
//
// All state lives in Redis and every change is one Lua script (engine.lua),
// so any number of Engine values, in any number of processes, may share
// one Redis: none ever offers an agent more than its capacity or gives a
// conversation to two agents. Timers (offer expiry, the preferred-agent
// wait, a queue's maximum wait, cooldowns, heartbeats) live in Redis too;
// every Engine's Run fires the due ones, each exactly once, and they
// survive any restart. Time comes from Config.Now, never from Redis, so a
// fake clock drives everything in tests.
//
// # Matching
//
// A match is looked for in the script of every event that can make one:
// an arrival, an agent becoming available, joining a queue or gaining
// capacity, capacity freed (an offer declined or expired, a conversation
// ended, requeued or transferred away), a cooldown or a preferred-agent
// wait running out.
//
//   - An arriving conversation goes to its preferred agent when that agent
//     is eligible (available, in the queue, free capacity on the channel).
//     When the preferred agent is in the queue and not offline but cannot
//     take it now, and the queue sets a preferred-agent wait, only that
//     agent may have it until the wait runs out; then anyone may.
//   - Otherwise it goes to the eligible agent of the queue that has been
//     idle longest on that channel, skipping agents in the conversation's
//     cooldown. An agent's idle time on a channel starts at the latest of:
//     becoming available, receiving its last offer there, its load there
//     dropping back to zero. That is the explicit tie-break, and it spreads
//     multi-capacity channels (chat) across agents before stacking them.
//   - An agent with free capacity takes, among the queues it joined on that
//     channel, the first waiting conversation by queue priority (higher
//     first), then band (priority requeue, priority, normal), then time
//     queued; conversations waiting for it as preferred agent come first.
//
// An offer reserves capacity. It ends accepted, declined, expired (its
// timer, or Expire when a vendor reports it) or cancelled. A declined or
// expired conversation goes back to its place in the queue and is not
// offered to that agent again for Config.DeclineCooldown; an agent that
// lets Config.ExpiredInRow offers in a row expire is set away.
//
// # Wait estimates
//
// Each queue keeps, per channel, two moving averages (weight 0.2 for the
// newest sample) updated at every assignment (an accepted offer): the
// interval between assignments, each sample capped at the assigned
// conversation's own wait so that a queue standing empty does not inflate
// it, and the wait itself (queued to accepted). A waiting conversation's
// estimate is its position times the average interval; before two
// assignments were seen it is the average wait; before any, there is no
// estimate (Conversation.HasWaitEstimate is false, and callers show
// nothing, as Pega's empty _wait_time).
//
// # Outbox
//
// The scripts append every routing event to the outbox stream
// ({prefix}outbox) in the same step as the change; Outbox reads it with a
// consumer group. The agent-facing events (Offer, Offer_Cancelled,
// Assigned, Conversation_Ended, Presence) go to each agent's stream in the
// format docs/ROUTING.md fixes for routing/stream.
package routing
