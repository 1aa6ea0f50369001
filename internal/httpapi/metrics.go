package httpapi

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neovratz/neovratz/internal/broker"
)

// metrics are the API's Prometheus metrics, registered on the injected registry. Labels are
// bounded: routes are the registered patterns, models only those that passed the model check.
type metrics struct {
	httpRequests    *prometheus.CounterVec
	httpDuration    *prometheus.HistogramVec
	jobsEnqueued    *prometheus.CounterVec
	jobsFinished    *prometheus.CounterVec
	queueWait       *prometheus.HistogramVec
	jobDuration     *prometheus.HistogramVec
	ttft            *prometheus.HistogramVec
	itl             *prometheus.HistogramVec
	promptTokens    *prometheus.CounterVec
	generatedTokens *prometheus.CounterVec
	images          *prometheus.CounterVec
	imageSteps      *prometheus.CounterVec
	rejections      *prometheus.CounterVec
	webhooks        *prometheus.CounterVec
}

// Latency buckets in seconds. They include the SLO thresholds the alert rules use (0.5 s, 1 s
// and 2 s to first token; 100 ms between tokens).
var (
	httpBuckets  = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	ttftBuckets  = []float64{.01, .025, .05, .1, .25, .5, 1, 2, 5, 10, 30, 60}
	itlBuckets   = []float64{.001, .005, .01, .02, .05, .1, .2, .5, 1}
	queueBuckets = []float64{.001, .01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 900, 3600}
	jobBuckets   = []float64{.01, .05, .1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600}
)

func newMetrics(reg prometheus.Registerer, b Broker) (*metrics, error) {
	m := &metrics{
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "neovratz_http_requests_total",
			Help: "HTTP requests answered by the API, by route pattern, method and status code."}, []string{"route", "method", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "neovratz_http_request_duration_seconds",
			Help: "Time from receiving a request to the end of its response (streams included).", Buckets: httpBuckets}, []string{"route", "method"}),
		jobsEnqueued: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "neovratz_jobs_enqueued_total",
			Help: "Jobs the API enqueued, by kind and model."}, []string{"kind", "model"}),
		jobsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "neovratz_jobs_finished_total",
			Help: "Jobs whose end the API saw (synchronous calls and watched async jobs), by kind, model and final status."}, []string{"kind", "model", "status"}),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "neovratz_queue_wait_seconds",
			Help: "Time jobs waited in the queue before a worker started them.", Buckets: queueBuckets}, []string{"model"}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "neovratz_job_duration_seconds",
			Help: "End-to-end latency of jobs, from enqueue to finish.", Buckets: jobBuckets}, []string{"kind", "model"}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "neovratz_time_to_first_token_seconds",
			Help: "Time from receiving a synchronous text request to its first token.", Buckets: ttftBuckets}, []string{"model"}),
		itl: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "neovratz_inter_token_latency_seconds",
			Help: "Time between successive token deltas of synchronous text requests.", Buckets: itlBuckets}, []string{"model"}),
		promptTokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "neovratz_prompt_tokens_total",
			Help: "Prompt (input) tokens of finished synchronous calls."}, []string{"model"}),
		generatedTokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "neovratz_generated_tokens_total",
			Help: "Generated (output) tokens of finished synchronous calls."}, []string{"model"}),
		images: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "neovratz_images_generated_total",
			Help: "Images generated for synchronous calls."}, []string{"model"}),
		imageSteps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "neovratz_image_steps_total",
			Help: "Diffusion steps of images generated for synchronous calls that set steps."}, []string{"model"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "neovratz_rejections_total",
			Help: "Requests refused with 429, by reason (requests_per_minute, tokens_per_minute, concurrent_jobs, queue_full)."}, []string{"reason"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "neovratz_webhook_deliveries_total",
			Help: "Webhook deliveries by outcome (delivered, failed, dropped)."}, []string{"outcome"}),
	}
	for _, c := range []prometheus.Collector{m.httpRequests, m.httpDuration, m.jobsEnqueued, m.jobsFinished, m.queueWait,
		m.jobDuration, m.ttft, m.itl, m.promptTokens, m.generatedTokens, m.images, m.imageSteps, m.rejections, m.webhooks,
		&brokerCollector{b: b}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, reason := range []string{"requests_per_minute", "tokens_per_minute", "concurrent_jobs", "queue_full"} {
		m.rejections.WithLabelValues(reason)
	}
	return m, nil
}

// brokerCollector reports the queues and the worker registry at scrape time, so every API
// replica serves the same, current figures without polling.
//
// The per-model worker figures are neovratz_model_workers and neovratz_model_slots, not
// neovratz_worker_*: a worker serves neovratz_worker_slots for its own slots, and one name must
// not mean two things on the same Prometheus.
type brokerCollector struct{ b Broker }

// Worker states (label "state" of neovratz_model_workers and neovratz_model_slots): a draining
// worker finishes its jobs but takes no new ones.
const (
	stateServing  = "serving"
	stateDraining = "draining"
)

var (
	descDepth   = prometheus.NewDesc("neovratz_queue_depth", "Jobs queued per model.", []string{"model"}, nil)
	descRunning = prometheus.NewDesc("neovratz_jobs_running", "Jobs running per model.", []string{"model"}, nil)
	descOldest  = prometheus.NewDesc("neovratz_queue_oldest_age_seconds", "Age of the oldest queued job per model.", []string{"model"}, nil)
	descWorkers = prometheus.NewDesc("neovratz_model_workers",
		"Live workers serving each model, by state (serving, draining); 0 for a model with queued jobs and no worker.", []string{"model", "state"}, nil)
	descSlots = prometheus.NewDesc("neovratz_model_slots",
		"Job slots of the live workers serving each model, by worker state (serving, draining); a worker serving several models counts its slots for each.", []string{"model", "state"}, nil)
	descUp = prometheus.NewDesc("neovratz_broker_up", "Whether the last scrape could read the broker (1) or not (0).", nil, nil)
)

func (c *brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDepth, descRunning, descOldest, descWorkers, descSlots, descUp} {
		ch <- d
	}
}

func (c *brokerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	stats, err1 := c.b.QueueStats(ctx)
	workers, err2 := c.b.Workers(ctx)
	up := 1.0
	if err1 != nil || err2 != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up)
	for _, q := range stats {
		ch <- prometheus.MustNewConstMetric(descDepth, prometheus.GaugeValue, float64(q.Depth), q.Model)
		ch <- prometheus.MustNewConstMetric(descRunning, prometheus.GaugeValue, float64(q.Running), q.Model)
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, q.OldestQueuedAge.Seconds(), q.Model)
	}
	if err2 != nil {
		// Without the registry, no worker figure at all: a 0 would claim the workers are gone.
		return
	}
	for model, f := range modelFleet(stats, workers) {
		for i, state := range []string{stateServing, stateDraining} {
			ch <- prometheus.MustNewConstMetric(descWorkers, prometheus.GaugeValue, float64(f.workers[i]), model, state)
			ch <- prometheus.MustNewConstMetric(descSlots, prometheus.GaugeValue, float64(f.slots[i]), model, state)
		}
	}
}

// fleet is the workers and slots of one model, serving ([0]) and draining ([1]).
type fleet struct{ workers, slots [2]int }

// modelFleet counts the live workers and their slots per model and state. Models with queued
// jobs and no live worker get zeros, so that "jobs wait and nobody serves them" is a present
// series rather than a missing one. Labels stay bounded: models that workers registered, or
// that have queued jobs (which the API accepted for a model a worker served).
func modelFleet(stats []broker.QueueStats, workers []broker.WorkerInfo) map[string]fleet {
	out := map[string]fleet{}
	for _, w := range workers {
		i := 0
		if w.Draining {
			i = 1
		}
		for _, m := range w.Models {
			f := out[m]
			f.workers[i]++
			f.slots[i] += w.Slots
			out[m] = f
		}
	}
	for _, q := range stats {
		if _, ok := out[q.Model]; !ok && q.Depth > 0 {
			out[q.Model] = fleet{}
		}
	}
	return out
}
