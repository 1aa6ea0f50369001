package monitoring

import (
	"encoding/json"
	"fmt"
)

// The Grafana dashboards in grafana/dashboards are generated from the definitions in
// dashboards_test.go, so that every panel is written the same way and the tests can read every
// query. go test ./monitoring -run TestDashboards -update rewrites the files.

// dashboard is one Grafana dashboard.
type dashboard struct {
	file, uid, title, description string
	vars                          []variable
	rows                          []row
}

type row struct {
	title  string
	panels []panel
}

// panel is one panel; w is its width in Grafana's 24-column grid (default 12), h its height.
type panel struct {
	title, description string
	kind               string // timeseries (default), stat, logs
	unit               string
	queries            []query
	w, h               int
	min, max           *float64
	stack              bool
	thresholds         []threshold // for stat panels and threshold lines
	loki               bool        // queries are LogQL against Loki
}

type query struct {
	expr, legend string
	instant      bool
}

type threshold struct {
	value float64
	color string
}

// variable is a dashboard variable: a query over label values, or a free text box.
type variable struct {
	name, label, query string
	text               bool // a text box instead of a query
	loki               bool
	multi              bool
}

func ptr(f float64) *float64 { return &f }

var (
	promDS = map[string]string{"type": "prometheus", "uid": "prometheus"}
	lokiDS = map[string]string{"type": "loki", "uid": "loki"}
)

// render turns a dashboard into Grafana's JSON model (schema version 39, Grafana 10/11).
func (d dashboard) render() ([]byte, error) {
	var panels []any
	id, y := 1, 0
	for _, r := range d.rows {
		panels = append(panels, map[string]any{
			"type": "row", "id": id, "title": r.title, "collapsed": false, "panels": []any{},
			"gridPos": map[string]int{"x": 0, "y": y, "w": 24, "h": 1},
		})
		id++
		y++
		x, rowH := 0, 0
		for _, p := range r.panels {
			w, h := p.w, p.h
			if w == 0 {
				w = 12
			}
			if h == 0 {
				h = 8
			}
			if x+w > 24 {
				x, y = 0, y+rowH
				rowH = 0
			}
			panels = append(panels, p.render(id, x, y, w, h))
			id++
			x += w
			rowH = max(rowH, h)
		}
		y += rowH
	}
	var vars []any
	for _, v := range d.vars {
		vars = append(vars, v.render())
	}
	if vars == nil {
		vars = []any{}
	}
	out := map[string]any{
		"uid": d.uid, "title": d.title, "description": d.description,
		"tags": []string{"neovratz"}, "timezone": "browser", "editable": false,
		"schemaVersion": 39, "version": 1, "refresh": "30s", "graphTooltip": 1,
		"time":        map[string]string{"from": "now-6h", "to": "now"},
		"templating":  map[string]any{"list": vars},
		"annotations": map[string]any{"list": []any{}},
		"links": []any{map[string]any{"type": "dashboards", "tags": []string{"neovratz"}, "asDropdown": true,
			"title": "neovratz", "includeVars": true, "keepTime": true}},
		"panels": panels,
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func (p panel) render(id, x, y, w, h int) map[string]any {
	kind := p.kind
	if kind == "" {
		kind = "timeseries"
	}
	ds := promDS
	if p.loki {
		ds = lokiDS
	}
	var targets []any
	for i, q := range p.queries {
		t := map[string]any{"refId": string(rune('A' + i)), "datasource": ds, "expr": q.expr}
		if q.legend != "" {
			t["legendFormat"] = q.legend
		}
		if q.instant {
			t["instant"], t["range"] = true, false
		} else if !p.loki {
			t["range"] = true
		}
		if kind == "logs" {
			t["queryType"] = "range"
		}
		targets = append(targets, t)
	}
	out := map[string]any{
		"id": id, "type": kind, "title": p.title, "datasource": ds, "targets": targets,
		"gridPos": map[string]int{"x": x, "y": y, "w": w, "h": h},
	}
	if p.description != "" {
		out["description"] = p.description
	}
	switch kind {
	case "logs":
		out["options"] = map[string]any{"showTime": true, "wrapLogMessage": true, "sortOrder": "Descending",
			"enableLogDetails": true, "prettifyLogMessage": false, "dedupStrategy": "none"}
		return out
	case "stat":
		out["options"] = map[string]any{"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			"colorMode": "value", "graphMode": "area", "textMode": "auto", "justifyMode": "auto", "orientation": "auto"}
	default:
		custom := map[string]any{"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never", "spanNulls": false}
		if p.stack {
			custom["stacking"] = map[string]any{"mode": "normal", "group": "A"}
			custom["fillOpacity"] = 40
		}
		if len(p.thresholds) > 0 {
			custom["thresholdsStyle"] = map[string]any{"mode": "dashed"}
		}
		out["options"] = map[string]any{"legend": map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true},
			"tooltip": map[string]any{"mode": "multi", "sort": "desc"}}
		out["fieldConfig"] = map[string]any{"defaults": map[string]any{"custom": custom}, "overrides": []any{}}
	}
	defaults := map[string]any{}
	if fc, ok := out["fieldConfig"].(map[string]any); ok {
		defaults = fc["defaults"].(map[string]any)
	} else {
		out["fieldConfig"] = map[string]any{"defaults": defaults, "overrides": []any{}}
	}
	if p.unit != "" {
		defaults["unit"] = p.unit
	}
	if p.min != nil {
		defaults["min"] = *p.min
	}
	if p.max != nil {
		defaults["max"] = *p.max
	}
	steps := []any{map[string]any{"color": "green", "value": nil}}
	for _, t := range p.thresholds {
		steps = append(steps, map[string]any{"color": t.color, "value": t.value})
	}
	defaults["thresholds"] = map[string]any{"mode": "absolute", "steps": steps}
	return out
}

func (v variable) render() map[string]any {
	if v.text {
		return map[string]any{"type": "textbox", "name": v.name, "label": v.label, "query": "",
			"current": map[string]any{"text": "", "value": ""}, "hide": 0}
	}
	ds := promDS
	if v.loki {
		ds = lokiDS
	}
	return map[string]any{
		"type": "query", "name": v.name, "label": v.label, "datasource": ds,
		"query": v.query, "definition": v.query, "refresh": 2, "sort": 1,
		"multi": v.multi, "includeAll": v.multi, "allValue": ".*",
		"current": map[string]any{"text": "All", "value": "$__all"}, "hide": 0,
	}
}

// quantiles queries p50, p95 and p99 of a histogram, summed by the given labels.
func quantiles(metric, selector, by, legendPrefix string) []query {
	var qs []query
	for _, q := range []string{"0.5", "0.95", "0.99"} {
		qs = append(qs, query{
			expr:   fmt.Sprintf("histogram_quantile(%s, sum by (le%s) (rate(%s_bucket{%s}[$__rate_interval])))", q, by, metric, selector),
			legend: fmt.Sprintf("%sp%s", legendPrefix, map[string]string{"0.5": "50", "0.95": "95", "0.99": "99"}[q]),
		})
	}
	return qs
}
