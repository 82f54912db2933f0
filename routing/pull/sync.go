package pull

import (
	"context"
	"fmt"
	"time"

	"github.com/crmsync/crmsync"
)

// ErrSnapshotNeeded is wrapped by Changes when it cannot tell what
// happened after the given seq: the change log no longer reaches back
// that far, or the seq is ahead of the List (the List was deleted and
// made again). The client takes a fresh Snapshot and goes on from there.
var ErrSnapshotNeeded = crmsync.Errorf(crmsync.ECONFLICT, "after",
	"the change log does not reach this seq; take a fresh snapshot and continue from its seq")

// Snapshot is a List's open requests as they stood at one seq.
type Snapshot struct {
	List     string    `json:"list"`
	Seq      int64     `json:"seq"`
	Requests []Request `json:"requests"` // oldest first
}

// Change is one entry of a List's change log. State is the request's
// state after the change; Agent is who joined or left (for a close, who
// closed it, empty for the system).
type Change struct {
	Seq          int64     `json:"seq"`
	Type         string    `json:"type"` // List_Request, List_Update, Agent_Joined or Agent_Left
	Conversation string    `json:"conversation"`
	State        State     `json:"state"`
	Agent        string    `json:"agent,omitempty"`
	At           time.Time `json:"at"`
}

// Snapshot reads list's open requests, with their states and agents, and
// the seq they reflect, in one atomic step. ENOTFOUND (field list) when
// the List does not exist.
func (s *Store) Snapshot(ctx context.Context, list string) (*Snapshot, error) {
	if err := checkID("list", list); err != nil {
		return nil, err
	}
	v, err := s.run(ctx, "snapshot", list)
	if err != nil {
		return nil, err
	}
	if len(v) < 1 || (len(v)-1)%requestFields != 0 {
		return nil, fmt.Errorf("pull: snapshot: malformed answer from the script")
	}
	snap := &Snapshot{List: list, Seq: num(v[0]), Requests: make([]Request, 0, (len(v)-1)/requestFields)}
	for i := 1; i < len(v); i += requestFields {
		r, err := parseRequest(v[i : i+requestFields])
		if err != nil {
			return nil, err
		}
		snap.Requests = append(snap.Requests, *r)
	}
	return snap, nil
}

// Changes returns list's changes after seq after, oldest first; none when
// after is the List's seq. When the log cannot answer, the error wraps
// ErrSnapshotNeeded.
func (s *Store) Changes(ctx context.Context, list string, after int64) ([]Change, error) {
	if err := checkID("list", list); err != nil {
		return nil, err
	}
	if after < 0 {
		return nil, crmsync.Errorf(crmsync.EINVALID, "after", "must not be negative, got %d", after)
	}
	v, err := s.run(ctx, "changes", list, after)
	if err != nil {
		return nil, err
	}
	const per = 6
	if len(v) < 1 || (len(v)-1)%per != 0 {
		return nil, fmt.Errorf("pull: changes: malformed answer from the script")
	}
	out := make([]Change, 0, (len(v)-1)/per)
	for i := 1; i < len(v); i += per {
		out = append(out, Change{Seq: num(v[i]), Type: str(v[i+1]), Conversation: str(v[i+2]),
			State: State(str(v[i+3])), Agent: str(v[i+4]), At: msTime(str(v[i+5]))})
	}
	return out, nil
}
