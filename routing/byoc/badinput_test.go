package byoc_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/salesforce"
	"github.com/crmsync/crmsync/connectors/salesforce/sftest"
	"github.com/crmsync/crmsync/internal/redistest"
	"github.com/crmsync/crmsync/routing/byoc"
)

func TestBadRequestsAreNamedAndChangeNothing(t *testing.T) {
	f := newFixture(t)
	many := map[string]string{}
	for i := range salesforce.MaxAttributes + 1 {
		many[strings.Repeat("k", i+1)] = "v"
	}
	cases := []struct {
		name  string
		req   byoc.Request
		field string
	}{
		{"no conversation", byoc.Request{RoutingType: salesforce.Initial}, "conversation"},
		{"conversation with slash", byoc.Request{Conversation: "a/b", RoutingType: salesforce.Initial}, "conversation"},
		{"conversation with brace", byoc.Request{Conversation: "a}b", RoutingType: salesforce.Initial}, "conversation"},
		{"no routing type", byoc.Request{Conversation: "c1"}, "routing_type"},
		{"unknown routing type", byoc.Request{Conversation: "c1", RoutingType: "Conference"}, "routing_type"},
		{"bad queue", byoc.Request{Conversation: "c1", RoutingType: salesforce.Initial, Queue: "a b"}, "queue"},
		{"bad channel", byoc.Request{Conversation: "c1", RoutingType: salesforce.Initial, Channel: "..x"}, "channel"},
		{"bad key", byoc.Request{Conversation: "c1", RoutingType: salesforce.Transfer, Key: "k\n"}, "key"},
		{"attributes without flow", byoc.Request{Conversation: "c1", RoutingType: salesforce.Initial, Queue: "sales",
			Attributes: map[string]string{"a": "b"}}, "attributes"},
		{"too many attributes", byoc.Request{Conversation: "c1", RoutingType: salesforce.Initial, Queue: "billing",
			Attributes: many}, "attributes"},
		{"attribute with control char", byoc.Request{Conversation: "c1", RoutingType: salesforce.Initial, Queue: "billing",
			Attributes: map[string]string{"Lang": "f\x00r"}}, "attributes.Lang"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := f.r.Delegate(f.ctx, tc.req)
			var e *crmsync.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, crmsync.EINVALID, e.Code)
			assert.Equal(t, tc.field, e.Field, e.Error())
		})
	}
	for _, bad := range []string{"", "a/b", strings.Repeat("x", 200)} {
		err := f.r.Accepted(f.ctx, bad)
		assert.Equal(t, crmsync.EINVALID, crmsync.ErrorCode(err))
		err = f.r.Cancel(f.ctx, bad)
		assert.Equal(t, crmsync.EINVALID, crmsync.ErrorCode(err))
	}
	assert.Empty(t, f.sf.Calls(), "nothing was sent")
	assert.Zero(t, f.keys(), "nothing was stored")
}

func TestBadConfigIsNamed(t *testing.T) {
	rdb := redistest.Client(t)
	srv := sftest.Start(t, nil)
	sfc, err := salesforce.New(srv.ClientConfig(t, nil))
	require.NoError(t, err)
	cases := []struct {
		name  string
		cfg   byoc.Config
		field string
	}{
		{"prefix without hash tag", byoc.Config{Prefix: "crmsync:byoc:"}, "prefix"},
		{"empty hash tag", byoc.Config{Prefix: "crmsync:{}:"}, "prefix"},
		{"flow and queue", byoc.Config{Default: byoc.Way{FlowID: flowID, FallbackQueueID: fallback, QueueID: salesQ}}, "default"},
		{"fallback without flow", byoc.Config{Default: byoc.Way{FallbackQueueID: fallback}}, "default.flow_id"},
		{"flow without fallback", byoc.Config{Queues: map[string]byoc.Way{"billing": {FlowID: flowID}}}, "queues.billing.fallback_queue_id"},
		{"bad flow id", byoc.Config{Queues: map[string]byoc.Way{"billing": {FlowID: "flow-1", FallbackQueueID: fallback}}}, "queues.billing.flow_id"},
		{"bad queue id", byoc.Config{Channels: map[string]byoc.Way{"voice": {QueueID: "x"}}}, "channels.voice.queue_id"},
		{"attributes without flow", byoc.Config{Channels: map[string]byoc.Way{"voice": {QueueID: salesQ, Attributes: map[string]string{"a": "b"}}}}, "channels.voice.attributes"},
		{"bad attribute", byoc.Config{Default: byoc.Way{FlowID: flowID, FallbackQueueID: fallback, Attributes: map[string]string{"": "b"}}}, "default.attributes"},
		{"bad queue name", byoc.Config{Queues: map[string]byoc.Way{"a b": {}}}, "queues"},
		{"negative timeout", byoc.Config{PendingTimeout: -time.Second}, "pending_timeout"},
		{"negative interval", byoc.Config{SweepInterval: -1}, "sweep_interval"},
		{"negative attempts", byoc.Config{MaxDeleteAttempts: -1}, "max_delete_attempts"},
		{"negative batch", byoc.Config{SweepBatch: -1}, "sweep_batch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := byoc.New(rdb, sfc, tc.cfg)
			var e *crmsync.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, crmsync.EINVALID, e.Code)
			assert.Equal(t, tc.field, e.Field, e.Error())
		})
	}
	_, err = byoc.New(nil, sfc, byoc.Config{})
	assert.Error(t, err)
	r, err := byoc.New(rdb, sfc, byoc.Config{})
	require.NoError(t, err)
	cfg := r.Config()
	assert.Equal(t, byoc.DefaultPrefix, cfg.Prefix)
	assert.Equal(t, 5*time.Minute, cfg.PendingTimeout)
	assert.Equal(t, byoc.DefaultMaxDeleteAttempts, cfg.MaxDeleteAttempts)
}
