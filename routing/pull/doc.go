// Package pull is crmsync's pull-mode routing: Lists onto which channels
// park their customers' conversations (requests), agents who subscribe to
// Lists and are told of each new request, and agents who join requests of
// their own accord, several at once if they like, and leave again.
//
// All state lives in Redis and every change is one Lua script (pull.lua)
// that also writes the notifications, so the change and the news of it
// are one atomic step and any number of Stores, in any number of
// processes, may share one Redis. Time comes from Config.Now.
//
// # Requests and their states
//
// A request is UNREAD until an agent joins it, ACTIVE while at least one
// agent is in it, INACTIVE once every agent who joined has left without
// closing it, and CLOSED when an agent in it or the system closes it. A
// closed request leaves its List and expires after Config.ClosedTTL.
//
//	state     customer writes          an agent joins    the last agent leaves  close
//	UNREAD    no one is told           ACTIVE            (no one is in it)      CLOSED, by the system
//	ACTIVE    the agents in it are     ACTIVE, one more  INACTIVE               CLOSED, by an agent in
//	          told (Customer_Message)                                           it or the system
//	INACTIVE  no one is told           ACTIVE again      (no one is in it)      CLOSED, by the system
//	CLOSED    ECONFLICT                ECONFLICT         nothing changes        nothing changes
//
// A customer writing to an INACTIVE request tells no one: the request is
// on its List already, where any subscriber can see it and join. The
// same reason holds for an UNREAD one, whose subscribers were told when
// it arrived, so it too tells no one again. A join by an agent already in
// the request, a leave by one who already left, a repeated close or
// publish: each returns the request as it is and tells no one. A leave by
// an agent who never joined, and a close by an agent not in the request,
// are ECONFLICT.
//
// Who is told what, on each agent's stream (routing/stream's format):
//
//   - a new request: the List's subscribers, List_Request.
//   - a change of state: the subscribers and the agents in the request,
//     List_Update, naming the agent whose join, leave or close it was.
//   - a join or a leave: the agents in the request, the one who joined
//     or left included, Agent_Joined or Agent_Left, with the request's
//     state after it.
//   - a customer message while ACTIVE: the agents in it, Customer_Message.
//
// # Sequence numbers and catching up
//
// Every List counts its changes: a new request, a join, a leave and a
// close each add one to the List's seq and append an entry to its change
// log (a stream capped at Config.LogMaxLen, whose entry ids are the seqs).
// Every notification carries the seq of the change it reports and says
// what the change left behind (the state, the agent who came or went),
// so applying one is setting a state and adding or removing an agent.
// One change may reach an agent twice with the same seq (List_Update and
// Agent_Joined, when a join wakes a request it subscribes to);
// Customer_Message changes nothing on the List and carries the seq the
// List stands at.
//
// A client that shows a List keeps the seq S its copy reflects, and:
//
//  1. opens its event stream first, so nothing that happens afterwards
//     can pass it by;
//  2. takes a Snapshot, the open requests and the seq they reflect, and
//     sets S to that seq;
//  3. for each List_Request, List_Update, Agent_Joined and Agent_Left of
//     the List: a seq below S is in its copy already, skip it; S itself is
//     the change its copy ends with, told again, and applying it again
//     changes nothing; S+1 is the next change, apply it and move S on;
//     anything higher means changes it was not told of came between (a
//     join in a request it is not in), so it calls Changes(S) and
//     applies those;
//  4. after a reconnect, calls Changes(S) and applies what comes back
//     before it goes on with the stream.
//
// Changes returns every change after S exactly once, in order, or an
// error wrapping ErrSnapshotNeeded when the log has dropped some of them;
// then the client goes back to step 2. So the copy never misses a change,
// and a change that reaches it twice leaves it as if told once.
//
// # Redis keys
//
// Under Config.Prefix, which holds a hash tag:
//
//	lists              set of List ids
//	channels           hash: channel -> the List it publishes to
//	l:{list}           hash: name, chans, seq, created, updated
//	l:{list}:open      zset: requests not CLOSED; score = created ms
//	l:{list}:subs      set of subscribed agents
//	l:{list}:log       stream: the changes; entry id = {seq}-0
//	a:{agent}:lists    set of Lists the agent subscribes to
//	r:{conv}           hash: list, ch, sess, attrs, state, created, updated, closed, closed_by, seq
//	r:{conv}:agents    set of agents in the request now
//	r:{conv}:ever      set of agents who ever joined it
package pull
