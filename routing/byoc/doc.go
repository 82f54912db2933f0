// Package byoc is crmsync's side of Salesforce BYOC partner-owned
// routing: it hands conversations to Salesforce through the route API
// (connectors/salesforce) and keeps track of each pending routing until a
// rep takes it, the caller cancels it, or it is left too long, when it is
// deleted with DELETE route.
//
// The routing way (the channel's own setting, a flow with a fallback
// queue and routing attributes, or one queue) comes from Config, chosen
// by the conversation's queue, else its channel, else a default.
//
// State lives in Redis under one prefix with a hash tag, and every change
// is one script, so any number of Routers in any number of processes may
// share it:
//
//	{p}r:{conversation}  hash: the routing (key, type, state, since, due,
//	                     attempts, last_error, request_id, way) and the
//	                     claim of a route call in flight
//	{p}due               zset: conversation -> when its pending routing
//	                     times out (or its next delete attempt is due)
//	{p}stats             hash: counters (routed, duplicates, accepted,
//	                     deleted, delete_failed, delete_abandoned)
//
// Delegating the same conversation and routing type twice calls
// Salesforce once, unless the first call failed. Sweep takes the pending
// routings past their timeout, each claimed by one Router only, and
// deletes them; a delete that fails is tried again on a later sweep, up
// to Config.MaxDeleteAttempts, logged at its first failure and when given
// up, and counted.
package byoc
