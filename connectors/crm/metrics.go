package crm

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	requestsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "crmsync_crm_requests_total",
		Help: "Requests sent to the CRM, by endpoint and HTTP status (error: no answer).",
	}, []string{"endpoint", "status"})
	requestDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "crmsync_crm_request_duration_seconds",
		Help:    "Time from sending a CRM request to reading its response.",
		Buckets: prometheus.DefBuckets,
	}, []string{"endpoint"})
)

func observe(endpoint string, status int, d time.Duration) {
	label := "error"
	if status > 0 {
		label = strconv.Itoa(status)
	}
	requestsTotal.WithLabelValues(endpoint, label).Inc()
	requestDuration.WithLabelValues(endpoint).Observe(d.Seconds())
}
