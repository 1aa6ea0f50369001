package telemetry

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
)

// WorkerLister lists the live workers: broker.Broker's Workers method.
type WorkerLister interface {
	Workers(ctx context.Context) ([]broker.WorkerInfo, error)
}

// SDGroup is one target group of Prometheus HTTP service discovery (http_sd_configs).
type SDGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// ServiceDiscovery is an http.Handler that answers Prometheus HTTP service discovery with one
// target group per live worker that has a metrics address, so one Prometheus finds every
// worker on every host.
//
// Every label it sets starts with __meta_neovratz_: Prometheus drops those after relabeling,
// so the scrape config chooses which become series labels (monitoring/prometheus keeps the
// host name). The worker id is not made a label by default because it changes at every
// restart and would start new series each time; the target address (instance) is stable.
//
// Workers register their metrics address themselves, and a worker over HTTP needs only a
// worker token to do so; the handler therefore hands Prometheus only addresses of the form
// host:port with a real host and port, never a URL, path or credentials.
//
// It must be mounted behind authentication: the answer maps the GPU fleet.
type ServiceDiscovery struct {
	workers WorkerLister
	logger  *slog.Logger
}

// NewServiceDiscovery returns the handler for workers. A nil logger discards.
func NewServiceDiscovery(workers WorkerLister, logger *slog.Logger) *ServiceDiscovery {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &ServiceDiscovery{workers: workers, logger: logger}
}

// sdTimeout bounds one answer: Prometheus's own default refresh timeout is shorter than its
// 60 s refresh interval, and a stuck broker must not pile up requests.
const sdTimeout = 5 * time.Second

// ServeHTTP answers GET (and HEAD) with the target groups as JSON.
func (s *ServiceDiscovery) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), sdTimeout)
	defer cancel()
	ws, err := s.workers.Workers(ctx)
	if err != nil {
		// Prometheus keeps the last good target list when a refresh fails, which is what
		// an unreachable broker should cause: the cause goes to the log only.
		s.logger.Error("service discovery: list workers", "err", err)
		http.Error(w, "workers unavailable", http.StatusServiceUnavailable)
		return
	}
	groups := Groups(ws)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(groups); err != nil {
		s.logger.Debug("service discovery: write answer", "err", err)
	}
}

// Groups turns the worker registry into target groups, sorted by target. Workers without a
// usable metrics address are left out; when two entries share an address (a restarted worker
// whose old entry has not expired yet), the one with the latest heartbeat wins.
func Groups(ws []broker.WorkerInfo) []SDGroup {
	byAddr := map[string]broker.WorkerInfo{}
	for _, w := range ws {
		addr, ok := scrapeAddr(w.MetricsAddr)
		if !ok {
			continue
		}
		if old, dup := byAddr[addr]; dup && !w.LastHeartbeat.After(old.LastHeartbeat) {
			continue
		}
		byAddr[addr] = w
	}
	groups := make([]SDGroup, 0, len(byAddr))
	for addr, w := range byAddr {
		groups = append(groups, SDGroup{Targets: []string{addr}, Labels: map[string]string{
			"__meta_neovratz_worker_id": w.ID,
			"__meta_neovratz_hostname":  w.Hostname,
			"__meta_neovratz_engine":    w.Engine,
			"__meta_neovratz_version":   w.Version,
			"__meta_neovratz_slots":     strconv.Itoa(w.Slots),
			"__meta_neovratz_draining":  strconv.FormatBool(w.Draining),
			// Comma-framed, as Prometheus's Consul tags are, so that a regex like
			// .*,llama-3.1-8b,.* matches whole model names only.
			"__meta_neovratz_models": "," + strings.Join(w.Models, ",") + ",",
		}})
	}
	slices.SortFunc(groups, func(a, b SDGroup) int { return cmp.Compare(a.Targets[0], b.Targets[0]) })
	return groups
}

// scrapeAddr checks a registered metrics address: host:port, a host that names a host (not an
// unspecified address like 0.0.0.0), a port in 1-65535, nothing else. It returns the address
// in canonical form.
func scrapeAddr(addr string) (string, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return "", false
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 || strconv.Itoa(p) != port {
		return "", false
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsUnspecified() {
			return "", false
		}
	} else if !validHostname(host) {
		return "", false
	}
	return net.JoinHostPort(host, port), true
}

// validHostname accepts DNS names (letters, digits, hyphens, underscores and dots), which is
// all a worker's host can be; anything else (a slash, @, a space) is not an address.
func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
			if !ok {
				return false
			}
		}
	}
	return true
}
