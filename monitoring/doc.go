// Package monitoring holds no Go code: it is the monitoring bundle (Prometheus configuration
// and alert rules, Grafana provisioning and dashboards, Loki and Alloy configuration, and
// their compose file) and the tests that check it:
//
//   - promtool checks the Prometheus configuration and rules and runs the rules' unit tests,
//     which must cover every alert;
//   - the dashboards are generated from Go definitions (go test ./monitoring -update), are
//     valid JSON, and use only the provisioned data sources and their own variables;
//   - every metric a dashboard or an alert names is served by a real API and worker built as
//     the command builds them, and their exposition passes promlint.
package monitoring
