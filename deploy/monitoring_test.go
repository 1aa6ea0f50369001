package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestMonitoringCompose checks monitoring/docker-compose.yml (and the local override): the
// files it mounts exist and are where the programs read them, the addresses in the
// Prometheus, Grafana and Alloy configurations are its services, and it joins the
// application's network by the name the root compose files give it.
func TestMonitoringCompose(t *testing.T) {
	env := filledEnv(t, repo("monitoring", ".env.example"))
	dir := repo("monitoring")
	base := loadCompose(t, filepath.Join(dir, "docker-compose.yml"), env)
	for _, name := range []string{"prometheus", "grafana", "loki", "alloy"} {
		if _, ok := base.Services[name]; !ok {
			t.Fatalf("monitoring: no service %s", name)
		}
	}
	stages := dockerfileStages(t)
	for sname, s := range base.Services {
		checkService(t, base, sname, s, nil, stages, env)
	}

	prom := base.Services["prometheus"]
	mounts := map[string]string{
		"/etc/prometheus/prometheus.yml": "prometheus/prometheus.yml",
		"/etc/prometheus/rules":          "prometheus/rules",
		"/etc/prometheus/secrets":        "prometheus/secrets",
	}
	for target, src := range mounts {
		if got := mountSource(base, prom, target); got != filepath.Join(dir, src) {
			t.Errorf("prometheus: %s is mounted from %q, want monitoring/%s", target, got, src)
		}
	}
	if !slices.Contains(prom.Command, "--config.file=/etc/prometheus/prometheus.yml") {
		t.Errorf("prometheus: command %v does not read /etc/prometheus/prometheus.yml", prom.Command)
	}
	if !slices.Contains(prom.ExtraHosts, "neovratz-api:"+env["NEOVRATZ_API_IP"]) {
		t.Errorf("prometheus: extra_hosts %v does not map neovratz-api to NEOVRATZ_API_IP", prom.ExtraHosts)
	}

	graf := base.Services["grafana"]
	for target, src := range map[string]string{"/etc/grafana/provisioning": "grafana/provisioning", "/var/lib/grafana/dashboards": "grafana/dashboards"} {
		if got := mountSource(base, graf, target); got != filepath.Join(dir, src) {
			t.Errorf("grafana: %s is mounted from %q, want monitoring/%s", target, got, src)
		}
	}
	home := graf.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
	if _, err := os.Stat(filepath.Join(dir, "grafana", "dashboards", strings.TrimPrefix(home, "/var/lib/grafana/dashboards/"))); err != nil {
		t.Errorf("grafana: home dashboard %q: %v", home, err)
	}
	var provider struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(dir, "grafana", "provisioning", "dashboards", "dashboards.yml"), &provider)
	if len(provider.Providers) != 1 || provider.Providers[0].Options.Path != "/var/lib/grafana/dashboards" {
		t.Errorf("grafana: the dashboard provider does not read /var/lib/grafana/dashboards: %+v", provider)
	}

	// Every address a configuration names is a service of the bundle, on the port it listens on.
	listens := map[string]string{"prometheus": "9090", "grafana": "3000", "loki": "3100", "alloy": "12345"}
	var ds struct {
		Datasources []struct {
			URL string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(dir, "grafana", "provisioning", "datasources", "datasources.yml"), &ds)
	var addrs []string
	for _, d := range ds.Datasources {
		addrs = append(addrs, d.URL)
	}
	addrs = append(addrs, base.Services["alloy"].Environment["LOKI_URL"])
	var pc struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, filepath.Join(dir, "prometheus", "prometheus.yml"), &pc)
	for _, sc := range pc.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				if !strings.HasPrefix(target, "localhost:") && !strings.HasPrefix(target, "neovratz-api:") {
					addrs = append(addrs, "http://"+target)
				}
			}
		}
	}
	for _, a := range addrs {
		if a == "" {
			continue
		}
		hostport := strings.SplitN(strings.TrimPrefix(a, "http://"), "/", 2)[0]
		host, port := hostPort(t, "monitoring", hostport)
		if want, ok := listens[host]; !ok || want != strings.TrimLeft(strings.TrimPrefix(hostport, host), ":") {
			t.Errorf("monitoring: %s is not a service of the bundle on port %d", a, port)
		}
	}
	for _, c := range []struct{ file, needle string }{
		{"loki/loki.yml", "http_listen_port: 3100"},
		{"docker-compose.yml", "--server.http.listen-addr=0.0.0.0:12345"},
		{"docker-compose.yml", "--web.listen-address=:9090"},
	} {
		b, err := os.ReadFile(filepath.Join(dir, c.file))
		if err != nil || !strings.Contains(string(b), c.needle) {
			t.Errorf("monitoring/%s does not contain %q", c.file, c.needle)
		}
	}

	// The local override joins the application's network, whose name the root files fix.
	local := loadCompose(t, filepath.Join(dir, "docker-compose.local.yml"), env)
	n := local.Networks["neovratz"]
	if n == nil || !n.External {
		t.Fatal("docker-compose.local.yml: no external network neovratz")
	}
	for _, name := range []string{"docker-compose.yml", "docker-compose.api.yml"} {
		root := loadCompose(t, repo(name), filledEnv(t, repo(".env.example")))
		if root.Networks["default"] == nil || root.Networks["default"].Name != n.Name {
			t.Errorf("%s names its network %v, monitoring/docker-compose.local.yml joins %q", name, root.Networks["default"], n.Name)
		}
	}
	lp := local.Services["prometheus"]
	if _, ok := lp.networks()["neovratz"]; !ok {
		t.Error("docker-compose.local.yml: prometheus does not join the neovratz network")
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "docker-compose.local.yml"))
	if !strings.Contains(string(raw), "extra_hosts: !reset []") {
		t.Error("docker-compose.local.yml: prometheus must drop the neovratz-api host mapping (extra_hosts: !reset []) so the network's DNS answers")
	}
}
