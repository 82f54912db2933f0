package crm

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/connectors/crm/samplecrm"
	"github.com/crmsync/crmsync/templating"
)

func TestRender(t *testing.T) {
	cfg := sampleConfig("https://crm.example")
	cfg.Auth = Auth{Type: AuthBasic, Username: "crmsync", Password: "pw-1234"}
	cfg.Endpoints.CreateAccount.Format, cfg.Endpoints.CreateAccount.ContainerType, cfg.Endpoints.CreateAccount.ContainerName = "container", "map", "contact"
	c := newClient(t, cfg, Options{})
	v := session(cfg, bond)

	r, err := c.Render(EndpointCreateAccount, v)
	require.NoError(t, err)
	assert.Equal(t, "POST", r.Method)
	assert.Equal(t, "https://crm.example/api/accounts", r.URL)
	assert.Equal(t, `{"contact":{"name":"James Bond","phone":"+1 222 333 4444","email":"james.bond@agents.co"}}`, r.Body)
	assert.Equal(t, "Basic [REDACTED]", r.Header.Get("Authorization"))
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))

	r, err = c.Render(EndpointFindAccount, v)
	require.NoError(t, err)
	assert.Equal(t, "GET", r.Method)
	assert.Equal(t, "https://crm.example/api/accounts?q=%28Phone%3Aequals%3A%2A222%2A333%2A4444%29+or+%28Email%3Aequals%3Ajames.bond%40agents.co%29", r.URL,
		"find endpoints render the phone for a search")
	assert.Empty(t, r.Body)

	_, err = c.Render(EndpointFindAccountByID, v)
	assert.ErrorIs(t, err, ErrIncompleteURL)
	_, err = c.Render("nope", v)
	assert.ErrorIs(t, err, ErrNotConfigured)

	v.Set(templating.RecordID, "7")
	cfg.Endpoints.UploadFile.Type = "base64"
	cfg.Endpoints.UploadFile.Parameters = []Parameter{{Name: "file", Value: "{FILE_DATA}"}}
	c = newClient(t, cfg, Options{})
	r, err = c.Render(EndpointUploadFile, v)
	require.NoError(t, err)
	assert.Equal(t, `{"file":"<file data>"}`, r.Body)
	assert.Equal(t, "https://crm.example/api/records/7/attachments", r.URL)
}

func TestSend(t *testing.T) {
	crm, base := startCRM(t, samplecrm.Options{})
	cfg := sampleConfig(base)
	c := newClient(t, cfg, Options{})
	ctx := context.Background()
	v := session(cfg, bond)

	res, err := c.Send(ctx, EndpointFindAccount, v)
	require.NoError(t, err)
	assert.Equal(t, 200, res.Status)
	assert.Nil(t, res.Located, "nothing found yet")
	assert.Empty(t, res.ID)

	res, err = c.Send(ctx, EndpointCreateAccount, v)
	require.NoError(t, err)
	assert.Equal(t, 201, res.Status)
	assert.Equal(t, "1", res.ID)
	assert.Contains(t, res.Body, `"name":"James Bond"`)
	assert.Len(t, crm.Accounts(), 1)
	assert.Empty(t, v.Get(templating.AccountID, templating.Create), "Send runs no flow")

	res, err = c.Send(ctx, EndpointFindAccount, v)
	require.NoError(t, err)
	assert.Equal(t, "1", res.ID)
	assert.Equal(t, "James Bond", res.Located.(map[string]any)["name"])

	v.Set(templating.AccountID, "1")
	_, err = c.Send(ctx, EndpointCreateRecord, v)
	require.NoError(t, err)
	v.Set(templating.RecordID, "1")
	res, err = c.Send(ctx, EndpointUploadFile, v)
	require.NoError(t, err)
	assert.Equal(t, "1", res.ID)
	atts := crm.Attachments("1")
	require.Len(t, atts, 1)
	assert.Equal(t, checkFileText, string(atts[0].Bytes))

	v.Set(templating.AccountID, "404")
	res, err = c.Send(ctx, EndpointFindAccountByID, v)
	var he *HTTPError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, 404, res.Status)
	assert.Contains(t, res.Body, "not found")
}

// metricValue reads a counter's value, or a histogram's sample count,
// from the default registry.
func metricValue(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metrics
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestMetrics(t *testing.T) {
	crm, base := startCRM(t, samplecrm.Options{})
	cfg := sampleConfig(base)
	c := newClient(t, cfg, Options{})
	const total, seconds = "crmsync_crm_requests_total", "crmsync_crm_request_duration_seconds"
	ok := map[string]string{"endpoint": EndpointFindAccount, "status": "200"}
	failed := map[string]string{"endpoint": EndpointFindAccount, "status": "error"}
	endpoint := map[string]string{"endpoint": EndpointFindAccount}
	okBefore, failedBefore, timedBefore := metricValue(t, total, ok), metricValue(t, total, failed), metricValue(t, seconds, endpoint)

	_, _, err := c.find(context.Background(), cfg.Endpoints.FindAccount, session(cfg, bond))
	require.NoError(t, err)
	crm.SetFault(samplecrm.Fault{Mode: samplecrm.FaultDrop})
	_, _, err = c.find(context.Background(), cfg.Endpoints.FindAccount, session(cfg, bond))
	require.Error(t, err)
	crm.ClearFault()

	assert.Equal(t, okBefore+1, metricValue(t, total, ok))
	assert.Equal(t, failedBefore+1, metricValue(t, total, failed))
	assert.Equal(t, timedBefore+2, metricValue(t, seconds, endpoint))
}
