package salesforce_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/salesforce"
	"github.com/crmsync/crmsync/connectors/salesforce/sftest"
)

func TestRouteEveryWayAndType(t *testing.T) {
	srv, c, _ := peer(t)
	ctx := context.Background()
	ways := []struct {
		name string
		req  salesforce.RouteRequest
		want sftest.Route
	}{
		{"channel setting", salesforce.RouteRequest{}, sftest.Route{}},
		{"flow", salesforce.RouteRequest{Flow: &salesforce.Flow{FlowID: flowID, QueueID: fallback}},
			sftest.Route{HasRoutingInfo: true, FlowID: flowID, FallbackQueueID: fallback}},
		{"flow with attributes", salesforce.RouteRequest{Flow: &salesforce.Flow{FlowID: flowID, QueueID: fallback,
			RoutingAttributes: map[string]string{"Language": "fr", "Tier": "gold"}}},
			sftest.Route{HasRoutingInfo: true, FlowID: flowID, FallbackQueueID: fallback,
				RoutingAttributes: map[string]string{"Language": "fr", "Tier": "gold"}}},
		{"queue", salesforce.RouteRequest{QueueID: queueID}, sftest.Route{HasRoutingInfo: true, QueueID: queueID}},
		{"queue 18", salesforce.RouteRequest{QueueID: queue18ID}, sftest.Route{HasRoutingInfo: true, QueueID: queue18ID}},
	}
	n := 0
	for _, w := range ways {
		for _, typ := range []salesforce.RoutingType{salesforce.Initial, salesforce.Transfer} {
			t.Run(w.name+"/"+string(typ), func(t *testing.T) {
				req := w.req
				req.ConversationIdentifier = conv + "-" + string(typ)
				req.RoutingType = typ
				res, err := c.Route(ctx, req)
				require.NoError(t, err)
				assert.Equal(t, http.StatusOK, res.Status)

				calls := srv.Calls()
				require.Len(t, calls, n+1)
				got := calls[n]
				n++
				assert.Empty(t, got.Problem)
				assert.Equal(t, http.MethodPost, got.Method)
				assert.Equal(t, sftest.Path, got.Path)
				assert.True(t, strings.HasPrefix(got.ContentType, "multipart/form-data; boundary="), got.ContentType)
				assert.Equal(t, sftest.OrgID, got.OrgID)
				assert.Equal(t, sftest.AuthorizationContext, got.AuthorizationContext)
				assert.Equal(t, res.RequestID, got.RequestID)
				require.NotNil(t, got.Claims)
				assert.Equal(t, sftest.ClientID, got.Claims.Issuer)
				assert.Equal(t, sftest.Subject, got.Claims.Subject)
				assert.Equal(t, salesforce.DefaultAudience, got.Claims.Audience)

				want := w.want
				want.ConversationIdentifier, want.RoutingType = req.ConversationIdentifier, string(typ)
				require.NotNil(t, got.Route)
				assert.Equal(t, want, *got.Route)
			})
		}
	}
	ids := map[string]bool{}
	for _, c := range srv.Calls() {
		assert.False(t, ids[c.RequestID], "RequestId %s used twice", c.RequestID)
		ids[c.RequestID] = true
	}
	assert.Len(t, ids, 10)
}

func TestTokenReusedUntilNearExpiry(t *testing.T) {
	srv, c, clk := peer(t)
	ctx := context.Background()
	route := func() salesforce.Claims {
		t.Helper()
		_, err := c.Route(ctx, salesforce.RouteRequest{ConversationIdentifier: conv, RoutingType: salesforce.Initial})
		require.NoError(t, err)
		calls := srv.Calls()
		require.NotNil(t, calls[len(calls)-1].Claims)
		return *calls[len(calls)-1].Claims
	}
	first := route()
	assert.Equal(t, int64(salesforce.DefaultTokenLifetime/time.Second), first.Expires-first.IssuedAt)
	clk.Advance(time.Minute)
	assert.Equal(t, first, route(), "a token with two thirds of its life left is reused")
	clk.Advance(70 * time.Second) // 50 s left of 180
	second := route()
	assert.Greater(t, second.IssuedAt, first.IssuedAt, "a token near expiry is replaced")
	clk.Advance(-10 * time.Minute) // the clock stepped back
	third := route()
	assert.Less(t, third.IssuedAt, second.IssuedAt)
}

func TestDeleteRoute(t *testing.T) {
	srv, c, _ := peer(t)
	ctx := context.Background()
	_, err := c.Route(ctx, salesforce.RouteRequest{ConversationIdentifier: conv, RoutingType: salesforce.Initial, QueueID: queueID})
	require.NoError(t, err)
	assert.Equal(t, []string{conv}, srv.Pending())

	res, err := c.DeleteRoute(ctx, conv)
	require.NoError(t, err)
	assert.Equal(t, []string{conv}, srv.Deletes())
	assert.Empty(t, srv.Pending())
	last := srv.Calls()[len(srv.Calls())-1]
	assert.Equal(t, http.MethodDelete, last.Method)
	assert.Equal(t, "application/json", last.ContentType)
	assert.Equal(t, res.RequestID, last.RequestID)
	assert.Equal(t, sftest.OrgID, last.OrgID)

	_, err = c.DeleteRoute(ctx, conv)
	require.Error(t, err)
	assert.True(t, salesforce.IsNotFound(err), "%v", err)
	ok, _ := salesforce.Retryable(err)
	assert.False(t, ok)
}

func TestErrorsSortedForRetry(t *testing.T) {
	req := salesforce.RouteRequest{ConversationIdentifier: conv, RoutingType: salesforce.Initial}
	cases := []struct {
		name      string
		fault     sftest.Fault
		retryable bool
		after     time.Duration
		status    int
	}{
		{"503 with retry-after", sftest.Fault{Status: 503, RetryAfter: 7}, true, 7 * time.Second, 503},
		{"500", sftest.Fault{Status: 500}, true, 0, 500},
		{"429", sftest.Fault{Status: 429, RetryAfter: 2}, true, 2 * time.Second, 429},
		{"400 is final", sftest.Fault{Status: 400}, false, 0, 400},
		{"403 is final", sftest.Fault{Status: 403}, false, 0, 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, c, _ := peer(t)
			srv.SetFault(tc.fault)
			_, err := c.Route(context.Background(), req)
			var he *salesforce.HTTPError
			require.ErrorAs(t, err, &he)
			assert.Equal(t, tc.status, he.Status)
			assert.NotEmpty(t, he.RequestID)
			ok, after := salesforce.Retryable(err)
			assert.Equal(t, tc.retryable, ok)
			assert.Equal(t, tc.after, after)
		})
	}
	t.Run("hang is a timeout", func(t *testing.T) {
		srv, c, _ := peer(t, func(c *salesforce.Config) { c.Timeout = 150 * time.Millisecond })
		srv.SetFault(sftest.Fault{Mode: sftest.FaultHang})
		_, err := c.Route(context.Background(), req)
		var te *salesforce.TransportError
		require.ErrorAs(t, err, &te)
		assert.True(t, te.Timeout)
		ok, _ := salesforce.Retryable(err)
		assert.True(t, ok)
	})
	t.Run("slow within the timeout is fine", func(t *testing.T) {
		srv, c, _ := peer(t)
		srv.SetFault(sftest.Fault{Mode: sftest.FaultSlow, Delay: 20 * time.Millisecond, Count: 1})
		_, err := c.Route(context.Background(), req)
		require.NoError(t, err)
		assert.Len(t, srv.Routes(), 1)
	})
	t.Run("slow past the timeout", func(t *testing.T) {
		srv, c, _ := peer(t, func(c *salesforce.Config) { c.Timeout = 100 * time.Millisecond })
		srv.SetFault(sftest.Fault{Mode: sftest.FaultSlow, Delay: 5 * time.Second})
		_, err := c.Route(context.Background(), req)
		var te *salesforce.TransportError
		require.ErrorAs(t, err, &te)
		assert.True(t, te.Timeout)
	})
	t.Run("connection refused", func(t *testing.T) {
		srv, c, _ := peer(t)
		srv.Close()
		_, err := c.DeleteRoute(context.Background(), conv)
		var te *salesforce.TransportError
		require.ErrorAs(t, err, &te)
		assert.False(t, te.Timeout)
		ok, _ := salesforce.Retryable(err)
		assert.True(t, ok)
	})
	t.Run("wrong key is refused", func(t *testing.T) {
		clk := newClock()
		k, _ := sftest.Key(t)
		other := *k
		other.PublicKey.E = 3 // a different public key: no signature of ours verifies
		srv := sftest.New(t, sftest.Config{PublicKey: &other.PublicKey, OrgID: sftest.OrgID,
			AuthorizationContext: sftest.AuthorizationContext, ClientID: sftest.ClientID, Subject: sftest.Subject})
		c, err := salesforce.New(srv.ClientConfig(t, clk.Now))
		require.NoError(t, err)
		_, err = c.Route(context.Background(), req)
		var he *salesforce.HTTPError
		require.ErrorAs(t, err, &he)
		assert.Equal(t, http.StatusUnauthorized, he.Status)
		assert.Contains(t, srv.Calls()[0].Problem, "signature")
	})
}

func TestBadRequestsAreNamedAndNotSent(t *testing.T) {
	srv, c, _ := peer(t)
	flow := func(f salesforce.Flow) *salesforce.Flow { return &f }
	cases := []struct {
		name  string
		req   salesforce.RouteRequest
		field string
	}{
		{"no conversation", salesforce.RouteRequest{RoutingType: salesforce.Initial}, "conversationIdentifier"},
		{"control char", salesforce.RouteRequest{ConversationIdentifier: "a\nb", RoutingType: salesforce.Initial}, "conversationIdentifier"},
		{"long conversation", salesforce.RouteRequest{ConversationIdentifier: strings.Repeat("x", 256), RoutingType: salesforce.Initial}, "conversationIdentifier"},
		{"no type", salesforce.RouteRequest{ConversationIdentifier: conv}, "routingType"},
		{"lowercase type", salesforce.RouteRequest{ConversationIdentifier: conv, RoutingType: "initial"}, "routingType"},
		{"flow and queue", salesforce.RouteRequest{ConversationIdentifier: conv, RoutingType: salesforce.Initial, QueueID: queueID,
			Flow: flow(salesforce.Flow{FlowID: flowID, QueueID: fallback})}, "routingInfo"},
		{"bad queue id", salesforce.RouteRequest{ConversationIdentifier: conv, RoutingType: salesforce.Initial, QueueID: "queue-1"}, "routingInfo.queueId"},
		{"flow without fallback", salesforce.RouteRequest{ConversationIdentifier: conv, RoutingType: salesforce.Initial,
			Flow: flow(salesforce.Flow{FlowID: flowID})}, "routingInfo.flow.queueId"},
		{"flow without id", salesforce.RouteRequest{ConversationIdentifier: conv, RoutingType: salesforce.Initial,
			Flow: flow(salesforce.Flow{QueueID: fallback})}, "routingInfo.flow.flowId"},
		{"empty attribute name", salesforce.RouteRequest{ConversationIdentifier: conv, RoutingType: salesforce.Initial,
			Flow: flow(salesforce.Flow{FlowID: flowID, QueueID: fallback, RoutingAttributes: map[string]string{"": "x"}})}, "routingInfo.routingAttributes"},
		{"attribute value too long", salesforce.RouteRequest{ConversationIdentifier: conv, RoutingType: salesforce.Initial,
			Flow: flow(salesforce.Flow{FlowID: flowID, QueueID: fallback, RoutingAttributes: map[string]string{"k": strings.Repeat("v", 5000)}})}, "routingInfo.routingAttributes.k"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Route(context.Background(), tc.req)
			var e *crmsync.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, crmsync.EINVALID, e.Code)
			assert.Equal(t, tc.field, e.Field)
		})
	}
	_, err := c.DeleteRoute(context.Background(), "")
	var e *crmsync.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "conversationIdentifier", e.Field)
	assert.Empty(t, srv.Calls(), "nothing was sent")
}

func TestTokenRedactedFromEchoedAnswers(t *testing.T) {
	// A proxy that echoes the request's headers in its error page.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("bad gateway; you sent " + r.Header.Get("Authorization")))
	}))
	defer echo.Close()
	srv := sftest.Start(t, nil)
	cfg := srv.ClientConfig(t, nil)
	cfg.BaseURL = echo.URL
	c, err := salesforce.New(cfg)
	require.NoError(t, err)
	_, err = c.Route(context.Background(), salesforce.RouteRequest{ConversationIdentifier: conv, RoutingType: salesforce.Transfer})
	var he *salesforce.HTTPError
	require.ErrorAs(t, err, &he)
	assert.Contains(t, err.Error(), "bad gateway; you sent Bearer [REDACTED]")
	assert.NotContains(t, err.Error(), "eyJ", "no part of the JWT")
	assert.False(t, errors.Is(err, context.DeadlineExceeded))
}
