// Package pega takes Pega Customer Service's third-party routing calls and
// maps them onto the routing engine, so Pega can delegate the routing of
// its chat and messaging requests to crmsync.
//
// Pega makes two calls, one endpoint each:
//
//   - the route request (connector cyFetchExternalRoute, Pega's "Callback
//     URL for incoming Chat requests"): RouteHandler, DecodeRouteRequest,
//     Router.Route. The answer says whether a CSR is being looked for;
//     the CSR found is sent back later through Pega's PostRoutingEvents
//     service (package connectors/pega).
//   - the routing events (connector cyPostRoutingEvents, Pega's "Callback
//     URL for CSR-presence updates"): EventsHandler, DecodeEvent, Apply.
//
// Pega's traffic carries slips (keys with stray spaces, a misspelt key,
// other event names than its own table's); normalize.go absorbs them, in
// one table, and what is still unclear is refused with a 400 that names
// the field as Pega spelled it.
//
// # Events and the Router calls they make
//
//	Pega event (name sent)                    Kind                      Router call
//	QueuesJoined (table: QueueJoined)         QueuesJoined              SetQueues(Presence{Queues: split on ';'}); empty list: available nowhere
//	Offered                                   Offered                   Offer(Outcome: OfferShown)
//	Agent-Accepted                            AgentAccepted             Offer(Outcome: OfferAccepted)
//	Agent-Declined                            AgentDeclined             Offer(Outcome: OfferDeclined)
//	Expired (sent: ValidatePublish)           Expired                   Offer(Outcome: OfferExpired)
//	Conversation-Ended (also Agent-NeworkDisconnect, Agent-BrowserClose)
//	                                          ConversationEnded         End(Ref)
//	Agent-LoggedOff                           AgentLoggedOff            LogOff(Ref)
//	Transfer-To-Agent-Initiated (sent: TransferredtoAgent)
//	                                          TransferToAgentInitiated  Transfer(TargetAgent, StageInitiated)
//	Transfer-To-Agent-Accepted                TransferToAgentAccepted   Transfer(TargetAgent, StageAccepted)
//	Transfer-To-Agent-Declined                TransferToAgentDeclined   Transfer(TargetAgent, StageDeclined)
//	Transfer-To-Agent-Expired                 TransferToAgentExpired    Transfer(TargetAgent, StageExpired)
//	Transfer-To-Agent-Abandoned               TransferToAgentAbandoned  Transfer(TargetAgent, StageAbandoned)
//	Transfer-To-Queue-Initiated               TransferToQueueInitiated  Transfer(TargetQueue, StageInitiated)
//	Transfer-To-Queue-Accepted                TransferToQueueAccepted   Transfer(TargetQueue, StageAccepted)
//	Transfer-To-Queue-Declined                TransferToQueueDeclined   Transfer(TargetQueue, StageDeclined)
//	Transfer-To-Queue-Expired                 TransferToQueueExpired    Transfer(TargetQueue, StageExpired)
//	Transfer-To-Queue-Abandoned               TransferToQueueAbandoned  Transfer(TargetQueue, StageAbandoned)
//	LongRunning-Interaction                   LongRunningInteraction    Resume(Ref)
//	Requeuing                                 Requeuing                 Requeue(Priority: false)
//	Priority-Requeuing                        PriorityRequeuing         Requeue(Priority: true)
//
// Event names match whatever their case, spaces, '-' and '_'
// ("Transfer-to-agent-accepted", " LongRunning-Interaction").
//
// # Over the engine
//
// EngineRouter is the Router over the push-mode engine (package routing).
// Every Pega conversation goes on one engine channel (EngineConfig.Channel,
// "chat" unless set) with Source "pega"; Pega's _source travels as the
// attribute pega_source. Where Pega's events leave a case open, the
// engine's state settles it:
//
//   - Offered changes nothing: the engine made the offer.
//   - Conversation-Ended cancels a conversation no CSR took yet (the
//     customer left) and ends a held one.
//   - A transfer's decline or expiry names the declining CSR in
//     _agent_name in some examples and in _transferred_from_agent in
//     others; the CSR named that has the engine's open offer is meant.
//   - LongRunning-Interaction routes a finished conversation again with
//     its CSR as the preferred agent; one still routed is left as it is.
//
// A repeat of what was done already is Success and writes nothing.
//
// # Answers
//
// The route request answers 200 with _identifying_route or route_not_found
// (also when the engine knows no such queue), and 409 when the engine's
// state does not allow routing the conversation. A routing event answers
// 200 Success, or 200 Fail with a _reason when the engine refuses it
// (ECONFLICT, ENOTFOUND). Both answer 400 for malformed JSON, a missing,
// mistyped or bad field, an ambiguous duplicate or an unknown event; 401
// without a valid credential; 405 for a method other than POST; 413 for a
// body over the limit. A 5xx is only ever our side: 503 when the engine
// says a dependency is down, 500 for a fault, which is logged.
package pega
