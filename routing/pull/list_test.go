package pull

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/routing"
)

func TestConfig(t *testing.T) {
	rdb := newFixture(t).rdb
	cases := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero value", Config{}, true},
		{"own prefix", Config{Prefix: "x:{r}:", StreamPrefix: "y:{r}:"}, true},
		{"no hash tag", Config{Prefix: "crmsync:routing:"}, false},
		{"stream prefix in another slot", Config{Prefix: "x:{r}:", StreamPrefix: "x:{s}:"}, false},
		{"negative log length", Config{LogMaxLen: -1}, false},
		{"closed TTL under a second", Config{ClosedTTL: time.Millisecond}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(rdb, tc.cfg)
			if !tc.ok {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			c := s.Config()
			assert.NotEmpty(t, c.Prefix)
			assert.Positive(t, c.LogMaxLen)
			assert.Positive(t, c.StreamMaxLen)
			assert.GreaterOrEqual(t, c.ClosedTTL, time.Second)
			assert.NotNil(t, c.Now)
		})
	}
	s, err := New(rdb, Config{})
	require.NoError(t, err)
	assert.Equal(t, routing.DefaultPrefix, s.Config().Prefix)
	assert.Equal(t, DefaultClosedTTL, s.Config().ClosedTTL)
}

func TestLists(t *testing.T) {
	f := newFixture(t)
	f.list("L1", "fb", "tw")
	f.list("L2", "ig")
	f.subscribe("a1", "L1", "L2")

	l, err := f.s.GetList(f.ctx, "L1")
	require.NoError(t, err)
	assert.Equal(t, "List L1", l.Name)
	assert.Equal(t, []string{"fb", "tw"}, l.Channels)
	assert.Equal(t, 1, l.Subscribers)
	assert.Equal(t, f.clock.Now().UTC(), l.CreatedAt)

	t.Run("a channel publishes to one List only", func(t *testing.T) {
		err := f.s.PutList(f.ctx, List{ID: "L2", Name: "two", Channels: []string{"ig", "tw"}})
		require.Error(t, err)
		assert.Equal(t, crmsync.ECONFLICT, code(err))
		assert.Equal(t, "channels[1]", field(err))
		assert.Contains(t, err.Error(), "L1")
		l, err := f.s.GetList(f.ctx, "L2")
		require.NoError(t, err)
		assert.Equal(t, []string{"ig"}, l.Channels, "a refused put changes nothing")
		assert.Equal(t, "List L2", l.Name)
	})

	t.Run("a dropped channel is free for another List", func(t *testing.T) {
		f.list("L1", "fb")
		f.list("L2", "ig", "tw")
		_, err := f.s.PublishChannel(f.ctx, NewRequest{ID: "x1", Channel: "tw"})
		require.NoError(t, err)
		r := f.get("x1")
		assert.Equal(t, "L2", r.List)
		assert.Equal(t, "tw", r.Channel)
	})

	t.Run("publishing by channel", func(t *testing.T) {
		r, err := f.s.PublishChannel(f.ctx, NewRequest{ID: "x2", Channel: "fb"})
		require.NoError(t, err)
		assert.Equal(t, "L1", r.List)
		_, err = f.s.PublishChannel(f.ctx, NewRequest{ID: "x3", Channel: "nowhere"})
		assert.Equal(t, crmsync.ENOTFOUND, code(err))
		assert.Equal(t, "channel", field(err))
		_, err = f.s.PublishChannel(f.ctx, NewRequest{ID: "x3", List: "L2", Channel: "fb"})
		assert.Equal(t, crmsync.EINVALID, code(err))
		assert.Equal(t, "list", field(err))
		_, err = f.s.GetRequest(f.ctx, "x3")
		assert.Equal(t, crmsync.ENOTFOUND, code(err), "nothing was published")
	})

	t.Run("listing", func(t *testing.T) {
		ls, err := f.s.ListLists(f.ctx)
		require.NoError(t, err)
		require.Len(t, ls, 2)
		assert.Equal(t, "L1", ls[0].ID)
		assert.Equal(t, 1, ls[0].Open)
		assert.Equal(t, "L2", ls[1].ID)
		assert.Equal(t, int64(1), ls[1].Seq)
	})

	t.Run("a List with open requests stays", func(t *testing.T) {
		err := f.s.DeleteList(f.ctx, "L2")
		assert.Equal(t, crmsync.ECONFLICT, code(err))
		assert.Equal(t, "id", field(err))
		_, err = f.s.GetList(f.ctx, "L2")
		assert.NoError(t, err)
	})

	t.Run("deleting a List", func(t *testing.T) {
		_, err := f.s.Close(f.ctx, "x1", "")
		require.NoError(t, err)
		require.NoError(t, f.s.DeleteList(f.ctx, "L2"))
		_, err = f.s.GetList(f.ctx, "L2")
		assert.Equal(t, crmsync.ENOTFOUND, code(err))
		subs, err := f.s.Subscriptions(f.ctx, "a1")
		require.NoError(t, err)
		assert.Equal(t, []string{"L1"}, subs, "its subscriptions went with it")
		_, err = f.s.PublishChannel(f.ctx, NewRequest{ID: "x4", Channel: "ig"})
		assert.Equal(t, crmsync.ENOTFOUND, code(err), "its channels publish nowhere")
		f.list("L3", "ig", "tw")
		assert.Equal(t, crmsync.ENOTFOUND, code(f.s.DeleteList(f.ctx, "L2")))
		n, err := f.rdb.Exists(f.ctx, f.prefix+"l:L2", f.prefix+"l:L2:log", f.prefix+"l:L2:subs", f.prefix+"l:L2:open").Result()
		require.NoError(t, err)
		assert.Zero(t, n, "no key of the List is left")
	})
}

func TestSubscriptions(t *testing.T) {
	f := newFixture(t)
	f.list("L1")
	f.list("L2")
	f.subscribe("a1", "L2", "L1")
	f.subscribe("a1", "L1")
	subs, err := f.s.Subscriptions(f.ctx, "a1")
	require.NoError(t, err)
	assert.Equal(t, []string{"L1", "L2"}, subs)

	err = f.s.Subscribe(f.ctx, "a1", "L3")
	assert.Equal(t, crmsync.ENOTFOUND, code(err))
	err = f.s.Subscribe(f.ctx, "a2", "L1", "nope")
	assert.Equal(t, crmsync.ENOTFOUND, code(err))
	assert.Equal(t, "lists[1]", field(err))
	subs, err = f.s.Subscriptions(f.ctx, "a2")
	require.NoError(t, err)
	assert.Empty(t, subs, "a refused subscribe subscribes to none")

	require.NoError(t, f.s.Unsubscribe(f.ctx, "a1", "L2", "gone"))
	subs, err = f.s.Subscriptions(f.ctx, "a1")
	require.NoError(t, err)
	assert.Equal(t, []string{"L1"}, subs)

	f.publish("r1", "L1")
	f.publish("r2", "L2")
	assert.Equal(t, []string{"List_Request UNREAD"}, f.told("a1"), "told of L1's request only")
}

func TestBadInput(t *testing.T) {
	f := newFixture(t)
	f.list("L1", "fb")
	f.publish("r1", "L1")
	seq := f.seq("L1")
	long := strings.Repeat("x", 129)
	cases := []struct {
		name  string
		do    func() error
		field string
	}{
		{"list id empty", func() error { return f.s.PutList(f.ctx, List{ID: ""}) }, "id"},
		{"list id with a colon", func() error { return f.s.PutList(f.ctx, List{ID: "a:b"}) }, "id"},
		{"list name with a newline", func() error { return f.s.PutList(f.ctx, List{ID: "L9", Name: "a\nb"}) }, "name"},
		{"channel twice", func() error { return f.s.PutList(f.ctx, List{ID: "L9", Channels: []string{"c", "c"}}) }, "channels[1]"},
		{"channel bad", func() error { return f.s.PutList(f.ctx, List{ID: "L9", Channels: []string{"c", "-c"}}) }, "channels[1]"},
		{"request id too long", func() error { _, err := f.s.Publish(f.ctx, NewRequest{ID: long, List: "L1"}); return err }, "id"},
		{"request without list", func() error { _, err := f.s.Publish(f.ctx, NewRequest{ID: "r2"}); return err }, "list"},
		{"request by channel without channel", func() error { _, err := f.s.PublishChannel(f.ctx, NewRequest{ID: "r2"}); return err }, "channel"},
		{"bad session", func() error {
			_, err := f.s.Publish(f.ctx, NewRequest{ID: "r2", List: "L1", Session: "fax-1"})
			return err
		}, "session"},
		{"bad attribute value", func() error {
			_, err := f.s.Publish(f.ctx, NewRequest{ID: "r2", List: "L1", Attributes: map[string]string{"k": "a\x00"}})
			return err
		}, "attributes.k"},
		{"join without agent", func() error { _, err := f.s.Join(f.ctx, "r1", ""); return err }, "agent"},
		{"join with a bad agent", func() error { _, err := f.s.Join(f.ctx, "r1", "a b"); return err }, "agent"},
		{"leave a bad id", func() error { _, err := f.s.Leave(f.ctx, "..", "a1"); return err }, "id"},
		{"close with a bad agent", func() error { _, err := f.s.Close(f.ctx, "r1", "@x"); return err }, "agent"},
		{"subscribe to nothing", func() error { return f.s.Subscribe(f.ctx, "a1") }, "lists"},
		{"subscribe to a bad list", func() error { return f.s.Subscribe(f.ctx, "a1", "L1", "x/y") }, "lists[1]"},
		{"snapshot of a bad list", func() error { _, err := f.s.Snapshot(f.ctx, ""); return err }, "list"},
		{"changes before zero", func() error { _, err := f.s.Changes(f.ctx, "L1", -1); return err }, "after"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			require.Error(t, err)
			assert.Equal(t, crmsync.EINVALID, code(err), "%v", err)
			assert.Equal(t, tc.field, field(err), "%v", err)
		})
	}
	assert.Equal(t, seq, f.seq("L1"), "nothing changed")
	ls, err := f.s.ListLists(f.ctx)
	require.NoError(t, err)
	assert.Len(t, ls, 1)
	assert.Equal(t, StateUnread, f.get("r1").State)
	assert.Empty(t, f.get("r1").Agents)

	_, err = f.s.Join(f.ctx, "missing", "a1")
	assert.Equal(t, crmsync.ENOTFOUND, code(err))
	_, err = f.s.Publish(f.ctx, NewRequest{ID: "r1", List: "L2"})
	assert.Equal(t, crmsync.ENOTFOUND, code(err), "no List L2")
	f.list("L2")
	_, err = f.s.Publish(f.ctx, NewRequest{ID: "r1", List: "L2"})
	assert.Equal(t, crmsync.ECONFLICT, code(err), "r1 is open on L1")
	assert.Equal(t, "id", field(err))
}

func TestPublishIsIdempotent(t *testing.T) {
	f := newFixture(t)
	f.list("L1")
	f.subscribe("s1", "L1")
	first := f.publish("r1", "L1")
	assert.Equal(t, map[string]string{"lang": "en"}, first.Attributes)
	assert.Equal(t, "chat-r1", first.Session)
	f.clock.Advance(time.Second)
	again, err := f.s.Publish(f.ctx, NewRequest{ID: "r1", List: "L1", Attributes: map[string]string{"lang": "fr"}})
	require.NoError(t, err)
	assert.Equal(t, first, again, "the request as first published")
	assert.Equal(t, []string{"List_Request UNREAD"}, f.told("s1"), "told once")
	assert.Equal(t, int64(1), f.seq("L1"))
}

func TestClosedRequestsExpire(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.ClosedTTL = 90 * time.Second })
	f.list("L1")
	f.publish("r1", "L1")
	f.join("r1", "a1")
	f.publish("r2", "L1")

	for _, k := range []string{"r:r1", "r:r1:agents", "r:r1:ever"} {
		ttl, err := f.rdb.PTTL(f.ctx, f.prefix+k).Result()
		require.NoError(t, err)
		assert.Less(t, ttl, time.Duration(0), "%s does not expire while open", k)
	}
	r, err := f.s.Close(f.ctx, "r1", "a1")
	require.NoError(t, err)
	assert.Equal(t, "a1", r.ClosedBy)
	require.NotNil(t, r.ClosedAt)
	assert.Equal(t, f.clock.Now().UTC(), *r.ClosedAt)
	for _, k := range []string{"r:r1", "r:r1:agents", "r:r1:ever"} {
		ttl, err := f.rdb.PTTL(f.ctx, f.prefix+k).Result()
		require.NoError(t, err)
		assert.Greater(t, ttl, 80*time.Second, "%s expires", k)
		assert.LessOrEqual(t, ttl, 90*time.Second, "%s expires", k)
	}
	snap, err := f.s.Snapshot(f.ctx, "L1")
	require.NoError(t, err)
	require.Len(t, snap.Requests, 1, "a closed request leaves the List")
	assert.Equal(t, "r2", snap.Requests[0].ID)

	// Once Redis dropped it, the id is free again.
	require.NoError(t, f.rdb.Del(f.ctx, f.prefix+"r:r1").Err())
	r, err = f.s.Publish(f.ctx, NewRequest{ID: "r1", List: "L1"})
	require.NoError(t, err)
	assert.Equal(t, StateUnread, r.State)
	assert.Empty(t, r.Agents, "nothing of the old request is carried over")
	_, err = f.s.Leave(f.ctx, "r1", "a1")
	assert.Equal(t, crmsync.ECONFLICT, code(err), "the old request's agents are forgotten")
}
