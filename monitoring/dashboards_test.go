package monitoring

// The four dashboards. API figures carry job="neovratz-api", worker and GPU figures
// job="neovratz-worker" (the Prometheus job names of prometheus/prometheus.yml). Per-model
// queue and worker figures come from the API, which reads them from the broker: every replica
// reports the same values, so they are taken with max by (model), never summed.

const (
	api    = `job="neovratz-api"`
	wrk    = `job="neovratz-worker"`
	apiM   = `job="neovratz-api", model=~"$model"`
	wrkM   = `job="neovratz-worker", model=~"$model"`
	wrkH   = `job="neovratz-worker", hostname=~"$hostname"`
	rate5  = "[$__rate_interval]"
	gpuLeg = "{{hostname}} GPU {{gpu}}"
)

var modelVar = variable{name: "model", label: "Model", query: `label_values(neovratz_jobs_enqueued_total{job="neovratz-api"}, model)`, multi: true}

var dashboards = []dashboard{
	{
		file: "overview.json", uid: "neovratz-overview", title: "neovratz / Overview",
		description: "Traffic, latency, queues and errors of the whole service.",
		rows: []row{
			{title: "Now", panels: []panel{
				{title: "Requests/s", kind: "stat", w: 4, h: 4, unit: "reqps",
					queries: []query{{expr: "sum(rate(neovratz_http_requests_total{" + api + "}" + rate5 + "))"}}},
				{title: "5xx ratio", kind: "stat", w: 4, h: 4, unit: "percentunit", thresholds: []threshold{{0.01, "orange"}, {0.05, "red"}},
					queries: []query{{expr: `sum(rate(neovratz_http_requests_total{` + api + `, code=~"5.."}` + rate5 + `)) / sum(rate(neovratz_http_requests_total{` + api + `}` + rate5 + `))`}}},
				{title: "Queued jobs", kind: "stat", w: 4, h: 4,
					queries: []query{{expr: "sum(max by (model) (neovratz_queue_depth{" + api + "}))"}}},
				{title: "Running jobs", kind: "stat", w: 4, h: 4,
					queries: []query{{expr: "sum(max by (model) (neovratz_jobs_running{" + api + "}))"}}},
				{title: "Workers up", kind: "stat", w: 4, h: 4,
					queries: []query{{expr: "count(up{" + wrk + "} == 1) or vector(0)"}}},
				{title: "Alerts firing", kind: "stat", w: 4, h: 4, thresholds: []threshold{{1, "red"}},
					queries: []query{{expr: `count(ALERTS{alertstate="firing"}) or vector(0)`}}},
			}},
			{title: "Traffic", panels: []panel{
				{title: "Requests by route", unit: "reqps", stack: true,
					queries: []query{{expr: "sum by (route) (rate(neovratz_http_requests_total{" + api + "}" + rate5 + "))", legend: "{{route}}"}}},
				{title: "Responses by status", unit: "reqps", stack: true,
					queries: []query{{expr: "sum by (code) (rate(neovratz_http_requests_total{" + api + "}" + rate5 + "))", legend: "{{code}}"}}},
				{title: "Jobs enqueued by model", unit: "ops", stack: true,
					queries: []query{{expr: "sum by (model) (rate(neovratz_jobs_enqueued_total{" + api + "}" + rate5 + "))", legend: "{{model}}"}}},
				{title: "Tokens", unit: "short", description: "Prompt and generated tokens per second of synchronous calls.",
					queries: []query{
						{expr: "sum(rate(neovratz_prompt_tokens_total{" + api + "}" + rate5 + "))", legend: "prompt"},
						{expr: "sum(rate(neovratz_generated_tokens_total{" + api + "}" + rate5 + "))", legend: "generated"},
					}},
			}},
			{title: "Latency", panels: []panel{
				{title: "Time to first token", unit: "s", thresholds: []threshold{{2, "red"}}, description: "The alert threshold (SLO) is 2 s at p95.",
					queries: quantiles("neovratz_time_to_first_token_seconds", api, "", "")},
				{title: "Inter-token latency", unit: "s",
					queries: quantiles("neovratz_inter_token_latency_seconds", api, "", "")},
				{title: "Job latency (enqueue to finish), p95 by kind", unit: "s",
					queries: []query{{expr: "histogram_quantile(0.95, sum by (le, kind) (rate(neovratz_job_duration_seconds_bucket{" + api + "}" + rate5 + ")))", legend: "{{kind}}"}}},
				{title: "Queue wait", unit: "s",
					queries: quantiles("neovratz_queue_wait_seconds", api, "", "")},
				{title: "HTTP request duration, p95 by route", unit: "s", w: 24,
					queries: []query{{expr: "histogram_quantile(0.95, sum by (le, route) (rate(neovratz_http_request_duration_seconds_bucket{" + api + "}" + rate5 + ")))", legend: "{{route}}"}}},
			}},
			{title: "Queues", panels: []panel{
				{title: "Queue depth", stack: true,
					queries: []query{{expr: "max by (model) (neovratz_queue_depth{" + api + "})", legend: "{{model}}"}}},
				{title: "Oldest queued job", unit: "s", thresholds: []threshold{{300, "red"}},
					queries: []query{{expr: "max by (model) (neovratz_queue_oldest_age_seconds{" + api + "})", legend: "{{model}}"}}},
				{title: "Running jobs and slots", description: "Jobs running (busy slots) against the slots of the serving (not draining) workers, per model.",
					queries: []query{
						{expr: "max by (model) (neovratz_jobs_running{" + api + "})", legend: "{{model}} running"},
						{expr: "max by (model) (neovratz_model_slots{" + api + `, state="serving"})`, legend: "{{model}} slots"},
					}},
				{title: "Live workers", description: "Workers serving each model, and those draining (finishing their jobs, taking no new ones).",
					queries: []query{
						{expr: "max by (model) (neovratz_model_workers{" + api + `, state="serving"})`, legend: "{{model}}"},
						{expr: "max by (model) (neovratz_model_workers{" + api + `, state="draining"}) > 0`, legend: "{{model}} draining"},
					}},
			}},
			{title: "Errors", panels: []panel{
				{title: "Jobs finished by status", unit: "ops", stack: true,
					queries: []query{{expr: "sum by (status) (rate(neovratz_jobs_finished_total{" + api + "}" + rate5 + "))", legend: "{{status}}"}}},
				{title: "Requests refused (429) by reason", unit: "reqps", stack: true,
					queries: []query{{expr: "sum by (reason) (rate(neovratz_rejections_total{" + api + "}" + rate5 + "))", legend: "{{reason}}"}}},
				{title: "5xx by route", unit: "reqps", stack: true,
					queries: []query{{expr: `sum by (route, code) (rate(neovratz_http_requests_total{` + api + `, code=~"5.."}` + rate5 + `))`, legend: "{{code}} {{route}}"}}},
				{title: "Broker reachable", min: ptr(0), max: ptr(1),
					queries: []query{{expr: "neovratz_broker_up{" + api + "}", legend: "{{instance}}"}}},
			}},
		},
	},
	{
		file: "model.json", uid: "neovratz-model", title: "neovratz / Model",
		description: "Everything about the models chosen above: demand, queue, latency, tokens, engine.",
		vars:        []variable{modelVar},
		rows: []row{
			{title: "Demand and queue", panels: []panel{
				{title: "Jobs enqueued", unit: "ops",
					queries: []query{{expr: "sum by (model, kind) (rate(neovratz_jobs_enqueued_total{" + apiM + "}" + rate5 + "))", legend: "{{model}} {{kind}}"}}},
				{title: "Jobs finished by status", unit: "ops",
					queries: []query{{expr: "sum by (model, status) (rate(neovratz_jobs_finished_total{" + apiM + "}" + rate5 + "))", legend: "{{model}} {{status}}"}}},
				{title: "Queue depth and running",
					queries: []query{
						{expr: "max by (model) (neovratz_queue_depth{" + apiM + "})", legend: "{{model}} queued"},
						{expr: "max by (model) (neovratz_jobs_running{" + apiM + "})", legend: "{{model}} running"},
					}},
				{title: "Oldest queued job", unit: "s",
					queries: []query{{expr: "max by (model) (neovratz_queue_oldest_age_seconds{" + apiM + "})", legend: "{{model}}"}}},
				{title: "Workers and slots", description: "Serving workers and their slots; draining workers finish their jobs and take no new ones.",
					queries: []query{
						{expr: "max by (model) (neovratz_model_workers{" + apiM + `, state="serving"})`, legend: "{{model}} workers"},
						{expr: "max by (model) (neovratz_model_slots{" + apiM + `, state="serving"})`, legend: "{{model}} slots"},
						{expr: "max by (model) (neovratz_model_workers{" + apiM + `, state="draining"}) > 0`, legend: "{{model}} draining"},
					}},
				{title: "Queue wait", unit: "s", queries: quantiles("neovratz_queue_wait_seconds", apiM, ", model", "{{model}} ")},
			}},
			{title: "Latency", panels: []panel{
				{title: "Time to first token", unit: "s", thresholds: []threshold{{2, "red"}},
					queries: quantiles("neovratz_time_to_first_token_seconds", apiM, ", model", "{{model}} ")},
				{title: "Inter-token latency", unit: "s",
					queries: quantiles("neovratz_inter_token_latency_seconds", apiM, ", model", "{{model}} ")},
				{title: "Job latency (enqueue to finish)", unit: "s",
					queries: quantiles("neovratz_job_duration_seconds", apiM, ", model", "{{model}} ")},
				{title: "Engine time per job (workers), p95", unit: "s",
					queries: []query{{expr: "histogram_quantile(0.95, sum by (le, model) (rate(neovratz_worker_engine_duration_seconds_bucket{" + wrkM + "}" + rate5 + ")))", legend: "{{model}}"}}},
			}},
			{title: "Output", panels: []panel{
				{title: "Tokens/s", description: "Prompt and generated tokens of synchronous calls (API) and generated tokens as the engines count them (workers).",
					queries: []query{
						{expr: "sum by (model) (rate(neovratz_prompt_tokens_total{" + apiM + "}" + rate5 + "))", legend: "{{model}} prompt"},
						{expr: "sum by (model) (rate(neovratz_generated_tokens_total{" + apiM + "}" + rate5 + "))", legend: "{{model}} generated"},
						{expr: "sum by (model) (rate(neovratz_worker_generated_tokens_total{" + wrkM + "}" + rate5 + "))", legend: "{{model}} generated (engines)"},
					}},
				{title: "Images and diffusion steps/s",
					queries: []query{
						{expr: "sum by (model) (rate(neovratz_images_generated_total{" + apiM + "}" + rate5 + "))", legend: "{{model}} images"},
						{expr: "sum by (model) (rate(neovratz_image_steps_total{" + apiM + "}" + rate5 + "))", legend: "{{model}} steps"},
					}},
				{title: "Engine failures by reason", unit: "ops",
					queries: []query{{expr: "sum by (model, reason) (rate(neovratz_worker_engine_failures_total{" + wrkM + "}" + rate5 + "))", legend: "{{model}} {{reason}}"}}},
				{title: "Worker job outcomes", unit: "ops",
					queries: []query{{expr: "sum by (model, outcome) (rate(neovratz_worker_jobs_total{" + wrkM + "}" + rate5 + "))", legend: "{{model}} {{outcome}}"}}},
			}},
		},
	},
	{
		file: "workers.json", uid: "neovratz-workers", title: "neovratz / Workers and GPUs",
		description: "Each worker's jobs and engines, and the GPUs of its host (NVML; workers built with GPU telemetry only).",
		vars:        []variable{{name: "hostname", label: "Host", query: `label_values(up{job="neovratz-worker"}, hostname)`, multi: true}},
		rows: []row{
			{title: "Workers", panels: []panel{
				{title: "Up", description: "1 when Prometheus could scrape the worker.", min: ptr(0), max: ptr(1),
					queries: []query{{expr: "up{" + wrkH + "}", legend: "{{instance}}"}}},
				{title: "Busy slots", description: "Jobs running against the slots configured, per worker.",
					queries: []query{
						{expr: "sum by (instance) (neovratz_worker_jobs_running{" + wrkH + "})", legend: "{{instance}} running"},
						{expr: "sum by (instance) (neovratz_worker_slots{" + wrkH + "})", legend: "{{instance}} slots"},
					}},
				{title: "Job outcomes", unit: "ops", stack: true,
					queries: []query{{expr: "sum by (instance, outcome) (rate(neovratz_worker_jobs_total{" + wrkH + "}" + rate5 + "))", legend: "{{instance}} {{outcome}}"}}},
				{title: "Generated tokens/s",
					queries: []query{{expr: "sum by (instance) (rate(neovratz_worker_generated_tokens_total{" + wrkH + "}" + rate5 + "))", legend: "{{instance}}"}}},
				{title: "Engine time to first token, p95", unit: "s",
					queries: []query{{expr: "histogram_quantile(0.95, sum by (le, instance) (rate(neovratz_worker_time_to_first_token_seconds_bucket{" + wrkH + "}" + rate5 + ")))", legend: "{{instance}}"}}},
				{title: "Engine failures", unit: "ops",
					queries: []query{{expr: "sum by (instance, reason) (rate(neovratz_worker_engine_failures_total{" + wrkH + "}" + rate5 + "))", legend: "{{instance}} {{reason}}"}}},
				{title: "Managed engine restarts (last hour)", w: 24, description: "Engines the worker runs itself (engine: process) that died and were started again.",
					queries: []query{{expr: "increase(neovratz_worker_engine_restarts_total{" + wrkH + "}[1h])", legend: "{{instance}} {{engine}}"}}},
			}},
			{title: "GPUs", panels: []panel{
				{title: "GPU utilization", unit: "percentunit", min: ptr(0), max: ptr(1),
					queries: []query{{expr: "neovratz_gpu_utilization_ratio{" + wrkH + "}", legend: gpuLeg}}},
				{title: "GPU memory used", unit: "bytes",
					queries: []query{
						{expr: "neovratz_gpu_memory_used_bytes{" + wrkH + "}", legend: gpuLeg + " used"},
						{expr: "neovratz_gpu_memory_total_bytes{" + wrkH + "}", legend: gpuLeg + " total"},
					}},
				{title: "GPU temperature", unit: "celsius", thresholds: []threshold{{85, "red"}},
					queries: []query{{expr: "neovratz_gpu_temperature_celsius{" + wrkH + "}", legend: gpuLeg}}},
				{title: "GPU power", unit: "watt",
					queries: []query{{expr: "neovratz_gpu_power_watts{" + wrkH + "}", legend: gpuLeg}}},
				{title: "SM clock", unit: "hertz",
					queries: []query{{expr: "neovratz_gpu_sm_clock_hertz{" + wrkH + "}", legend: gpuLeg}}},
				{title: "XID errors (last hour) and last XID", description: "GPU faults the driver reported; see NVIDIA's XID catalogue for the codes.",
					queries: []query{
						{expr: "increase(neovratz_gpu_xid_errors_total{" + wrkH + "}[1h])", legend: gpuLeg + " errors"},
						{expr: "neovratz_gpu_last_xid{" + wrkH + "}", legend: gpuLeg + " last XID"},
					}},
			}},
			{title: "Processes", panels: []panel{
				{title: "CPU", unit: "percentunit", w: 8,
					queries: []query{{expr: "rate(process_cpu_seconds_total{" + wrkH + "}" + rate5 + ")", legend: "{{instance}}"}}},
				{title: "Resident memory", unit: "bytes", w: 8,
					queries: []query{{expr: "process_resident_memory_bytes{" + wrkH + "}", legend: "{{instance}}"}}},
				{title: "Goroutines", w: 8,
					queries: []query{{expr: "go_goroutines{" + wrkH + "}", legend: "{{instance}}"}}},
			}},
		},
	},
	{
		file: "logs.json", uid: "neovratz-logs", title: "neovratz / Logs",
		description: "The containers' logs (Loki, shipped by Alloy). Labels: host, service, container, level; job, model, worker and request_id are structured metadata.",
		vars: []variable{
			{name: "service", label: "Service", query: "label_values(service)", loki: true, multi: true},
			{name: "level", label: "Level", query: "label_values(level)", loki: true, multi: true},
			{name: "search", label: "Search", text: true},
			{name: "job_id", label: "Job id", text: true},
		},
		rows: []row{
			{title: "Logs", panels: []panel{
				{title: "Log lines by level", loki: true, stack: true, w: 24, h: 6,
					queries: []query{{expr: `sum by (level) (count_over_time({service=~"$service", level=~"$level"} |= "$search" [$__auto]))`, legend: "{{level}}"}}},
				{title: "Logs", kind: "logs", loki: true, w: 24, h: 14,
					queries: []query{{expr: `{service=~"$service", level=~"$level"} |= "$search"`}}},
				{title: "Logs of job $job_id", kind: "logs", loki: true, w: 24, h: 10,
					description: "Every line that names the job id typed above, from the API and the workers.",
					queries:     []query{{expr: `{service=~".+"} | job = "$job_id"`}}},
				{title: "Errors", kind: "logs", loki: true, w: 24, h: 10,
					queries: []query{{expr: `{service=~"$service", level="ERROR"}`}}},
			}},
		},
	},
}
