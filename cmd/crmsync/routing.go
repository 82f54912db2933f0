package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmsync/crmsync/api"
	"github.com/crmsync/crmsync/configs"
	"github.com/crmsync/crmsync/connectors/crm/lookup"
	"github.com/crmsync/crmsync/connectors/salesforce"
	"github.com/crmsync/crmsync/routing"
	"github.com/crmsync/crmsync/routing/access"
	"github.com/crmsync/crmsync/routing/adapter"
	"github.com/crmsync/crmsync/routing/byoc"
	"github.com/crmsync/crmsync/routing/httpapi"
	"github.com/crmsync/crmsync/routing/pega"
	"github.com/crmsync/crmsync/routing/pull"
	"github.com/crmsync/crmsync/routing/stream"
)

// routingParts is the routing engine and everything around it, built from
// the config's routing section.
type routingParts struct {
	engine  *routing.Engine
	pull    *pull.Store
	streams *stream.Streams
	tokens  *access.AgentTokens
	auth    *access.Authenticator
	lookups *lookup.URLs

	registrars []api.Registrar

	// background work, started by start and stopped by stop
	runners []func(ctx context.Context) error
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// routingPrefix is the routing keys' prefix: under the configured key
// prefix, with the hash tag every routing script relies on.
func routingPrefix(c configs.Redis) string { return c.KeyPrefix + "{routing}:" }

func buildRouting(ctx context.Context, cfg *configs.Config, rdb redis.UniversalClient, logger *slog.Logger) (*routingParts, error) {
	rc := cfg.Routing
	prefix := routingPrefix(cfg.Redis)
	logPolicy := routing.LogOffRequeue
	if rc.LogOff == "keep" {
		logPolicy = routing.LogOffKeep
	}
	engine, err := routing.New(rdb, routing.Config{
		Prefix:          prefix,
		StreamPrefix:    prefix,
		StreamMaxLen:    rc.StreamMaxLen,
		OfferTimeout:    rc.OfferTimeout,
		HeartbeatGrace:  rc.HeartbeatGrace,
		ExpiredInRow:    rc.ExpiredInRow,
		DeclineCooldown: rc.DeclineCooldown,
		LogOff:          logPolicy,
		Logger:          logger.With("component", "routing"),
	})
	if err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	streams, err := stream.New(rdb, stream.Config{Prefix: prefix, MaxLen: rc.StreamMaxLen, Logger: logger.With("component", "stream")})
	if err != nil {
		return nil, fmt.Errorf("routing: streams: %w", err)
	}
	lists, err := pull.New(rdb, pull.Config{Prefix: prefix, StreamPrefix: prefix, StreamMaxLen: rc.StreamMaxLen})
	if err != nil {
		return nil, fmt.Errorf("routing: lists: %w", err)
	}
	tokens, err := access.NewAgentTokens(rc.AgentTokenSecret)
	if err != nil {
		return nil, fmt.Errorf("routing.agent_token_secret: %w", err)
	}
	lookups, err := lookup.Compile(rc.Lookup)
	if err != nil {
		return nil, fmt.Errorf("routing.lookup: %w", err)
	}
	p := &routingParts{
		engine: engine, pull: lists, streams: streams, tokens: tokens, lookups: lookups,
		auth: &access.Authenticator{APITokens: cfg.Server.APITokens, Agents: tokens},
	}
	for i, q := range rc.Queues {
		err := engine.PutQueue(ctx, routing.Queue{
			ID: q.ID, Name: q.Name, Priority: q.Priority, OfferTimeout: q.OfferTimeout,
			MaxWait: q.MaxWait, PreferredWait: q.PreferredWait, Channels: q.Channels,
		})
		if err != nil {
			return nil, fmt.Errorf("routing.queues[%d]: %w", i, err)
		}
	}
	for i, l := range rc.Lists {
		if err := lists.PutList(ctx, pull.List{ID: l.ID, Name: l.Name, Channels: l.Channels}); err != nil {
			return nil, fmt.Errorf("routing.lists[%d]: %w", i, err)
		}
	}

	p.registrars = append(p.registrars,
		httpapi.NewHandler(engine, p.auth, tokens, logger.With("component", "routing-api")),
		pull.NewHandler(lists, p.auth, logger.With("component", "lists-api")),
		api.RegistrarFunc(func(handle func(string, http.Handler)) {
			handle("GET /v1/agents/{id}/events", streams.Handler(p.auth))
			page := &adapter.Handler{Config: adapter.Config{TargetOrigin: rc.Adapter.TargetOrigin}, Tokens: tokens}
			handle("GET /agent/adapter", page)
			handle("GET /agent/adapter.js", page)
			handle("GET /agent/adapter.css", page)
		}),
	)
	p.runners = append(p.runners, engine.Run, streams.Run)

	if pc := cfg.Pega; pc.Enabled {
		ecfg := pega.EngineConfig{Channel: pc.Channel, Capacity: map[string]int{pc.Channel: pc.Capacity}}
		if err := ecfg.Validate(); err != nil {
			return nil, fmt.Errorf("pega: %w", err)
		}
		srv, err := pega.New(pega.NewEngineRouter(engine, ecfg), pega.Config{
			BearerTokens: pc.Inbound.BearerTokens, Username: pc.Inbound.Username, Password: pc.Inbound.Password,
			Logger: logger.With("component", "pega"),
		})
		if err != nil {
			return nil, fmt.Errorf("pega.inbound: %w", err)
		}
		p.registrars = append(p.registrars, api.RegistrarFunc(func(handle func(string, http.Handler)) {
			handle("POST "+pega.RoutePath, srv.RouteHandler())
			handle("POST "+pega.EventsPath, srv.EventsHandler())
		}))
	}

	if sf := cfg.Salesforce; sf.Enabled {
		client, err := salesforce.New(sf.ClientConfig())
		if err != nil {
			return nil, fmt.Errorf("salesforce: %w", err)
		}
		way := func(w configs.SalesforceWay) byoc.Way {
			return byoc.Way{FlowID: w.FlowID, FallbackQueueID: w.FallbackQueueID, Attributes: w.Attributes, QueueID: w.QueueID}
		}
		ways := func(m map[string]configs.SalesforceWay) map[string]byoc.Way {
			out := make(map[string]byoc.Way, len(m))
			for k, w := range m {
				out[k] = way(w)
			}
			return out
		}
		router, err := byoc.New(rdb, client, byoc.Config{
			Prefix: prefix + "byoc:", Default: way(sf.Default), Queues: ways(sf.Queues), Channels: ways(sf.Channels),
			PendingTimeout: sf.PendingTimeout, Logger: logger.With("component", "salesforce"),
		})
		if err != nil {
			return nil, fmt.Errorf("salesforce: %w", err)
		}
		p.registrars = append(p.registrars, byoc.NewHandler(router, p.auth, logger.With("component", "salesforce")))
		p.runners = append(p.runners, router.Run)
	}
	return p, nil
}

// start runs the background work until stop.
func (p *routingParts) start(logger *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	for _, run := range p.runners {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for ctx.Err() == nil {
				if err := run(ctx); err != nil && ctx.Err() == nil {
					logger.Error("routing: background work failed; restarting it", "err", err)
					select {
					case <-ctx.Done():
					case <-time.After(time.Second):
					}
					continue
				}
				return
			}
		}()
	}
}

// stop ends the background work and waits for it.
func (p *routingParts) stop() {
	if p == nil || p.cancel == nil {
		return
	}
	p.streams.Close()
	p.cancel()
	p.wg.Wait()
}
