package configs

import (
	"errors"
	"fmt"
	"time"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/salesforce"
	"github.com/crmsync/crmsync/routing"
)

// Salesforce is Salesforce BYOC for CCaaS partner-owned routing: crmsync
// asks Salesforce to route a conversation (POST /v1/routing/byoc/routes,
// which calls Salesforce's route API) and removes a routing left pending
// too long. Needs routing.enabled.
type Salesforce struct {
	Enabled bool `yaml:"enabled"`
	// BaseURL is the instance's Salesforce contact-center API host, such
	// as https://acme.my.salesforce-scrt.com (without /api).
	BaseURL string `yaml:"base_url"`
	// OrgID is the 15-character Salesforce org id.
	OrgID string `yaml:"org_id"`
	// AuthorizationContext is the contact center's developer name, as
	// Salesforce shows it.
	AuthorizationContext string `yaml:"authorization_context"`
	// ClientID is the connected app's consumer key (the JWT's issuer).
	ClientID string `yaml:"client_id"`
	// Subject is the JWT's subject (the integration user).
	Subject string `yaml:"subject"`
	// Audience is the JWT's audience. Empty means https://login.salesforce.com.
	Audience string `yaml:"audience"`
	// PrivateKey is the connected app's RSA private key, PEM.
	PrivateKey crmsync.Secret `yaml:"private_key"`
	// Timeout bounds one call. Zero means 10s.
	Timeout time.Duration `yaml:"timeout"`
	// PendingTimeout: a routing not accepted within this is removed with
	// DELETE route. Zero means 5m.
	PendingTimeout time.Duration `yaml:"pending_timeout"`
	// Default is how conversations are routed when neither their queue nor
	// their channel says: empty means the channel's own setting in
	// Salesforce.
	Default SalesforceWay `yaml:"default"`
	// Queues and Channels choose the way per crmsync queue or channel.
	Queues   map[string]SalesforceWay `yaml:"queues"`
	Channels map[string]SalesforceWay `yaml:"channels"`
}

// SalesforceWay is one of the three ways of the route API: by flow (FlowID
// with a fallback queue and routing attributes), by queue (QueueID), or,
// when both are empty, the channel's own setting.
type SalesforceWay struct {
	FlowID          string            `yaml:"flow_id"`
	FallbackQueueID string            `yaml:"fallback_queue_id"`
	Attributes      map[string]string `yaml:"attributes"`
	QueueID         string            `yaml:"queue_id"`
}

// ClientConfig is the route API client's config.
func (s Salesforce) ClientConfig() salesforce.Config {
	return salesforce.Config{
		BaseURL: s.BaseURL, OrgID: s.OrgID, AuthorizationContext: s.AuthorizationContext,
		ClientID: s.ClientID, Subject: s.Subject, Audience: s.Audience,
		PrivateKey: s.PrivateKey, Timeout: s.Timeout,
	}
}

func (c *Config) validateSalesforce(ps *Problems) {
	s := &c.Salesforce
	if !s.Enabled {
		return
	}
	if !c.Routing.Enabled {
		ps.add("salesforce.enabled", "needs routing.enabled")
	}
	if _, err := salesforce.New(s.ClientConfig()); err != nil {
		var e *crmsync.Error
		if errors.As(err, &e) && e.Field != "" {
			ps.add("salesforce."+e.Field, "%s", e.Message)
		} else {
			ps.add("salesforce", "%s", err)
		}
	}
	if s.PendingTimeout == 0 {
		s.PendingTimeout = 5 * time.Minute
	} else if s.PendingTimeout < time.Second || s.PendingTimeout > 24*time.Hour {
		ps.add("salesforce.pending_timeout", "must be from 1s to 24h, got %s", s.PendingTimeout)
	}
	checkWay := func(path string, w SalesforceWay) {
		if w.QueueID != "" && (w.FlowID != "" || w.FallbackQueueID != "" || len(w.Attributes) > 0) {
			ps.add(path, "give queue_id, or flow_id with fallback_queue_id and attributes, not both")
		}
		if w.FlowID == "" && (w.FallbackQueueID != "" || len(w.Attributes) > 0) {
			ps.add(path+".flow_id", "required with fallback_queue_id or attributes")
		}
	}
	checkWay("salesforce.default", s.Default)
	for _, m := range []struct {
		name string
		ways map[string]SalesforceWay
	}{{"queues", s.Queues}, {"channels", s.Channels}} {
		for id, w := range m.ways {
			path := fmt.Sprintf("salesforce.%s.%s", m.name, id)
			if err := routing.ValidateID(id); err != nil {
				ps.add(path, "%s", err)
			}
			checkWay(path, w)
		}
	}
}
