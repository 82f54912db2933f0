package jobs

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	eventsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "crmsync_events_total",
		Help: "Events received, by type and result (enqueued, duplicate, error).",
	}, []string{"type", "result"})
	jobsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "crmsync_jobs_total",
		Help: "Job runs, by task type and outcome (done, retry, archived, busy).",
	}, []string{"type", "outcome"})
	routingFeedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "crmsync_routing_feed_total",
		Help: "Routing outbox events read by the jobs, by event and result (enqueued, duplicate, ignored, no_session, invalid, error).",
	}, []string{"event", "result"})
	pegaAssignTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "crmsync_pega_assign_total",
		Help: "Offers passed on to Pega, by outcome (assigned, retry, rerouted, skipped, duplicate).",
	}, []string{"outcome"})
	jobDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "crmsync_job_duration_seconds",
		Help:    "Time one job run took, by task type.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	}, []string{"type"})
)

// observeJob counts one job run with its outcome (read when the run ends).
func observeJob(typ string, start time.Time, outcome *string) {
	jobsTotal.WithLabelValues(typ, *outcome).Inc()
	jobDuration.WithLabelValues(typ).Observe(time.Since(start).Seconds())
}
