package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// opDoc is what the OpenAPI document says of a route.
type opDoc struct {
	tag, summary string
	req          string // request body schema ("" = none)
	resp         string // success body: a schema name, or text, png, events, object
	stream       bool   // the success response may also be an SSE stream
	status       int    // success status; 0 = 200
	also         []int  // error statuses besides those every authenticated route has
}

// openapi serves GET /openapi.json.
func (s *Server) openapi(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.openapiDoc())
	return nil
}

type obj = map[string]any

// openapiDoc builds the OpenAPI 3.1 document of the route table.
func (s *Server) openapiDoc() obj {
	paths := obj{}
	for _, rt := range s.routes {
		path, params := openapiPath(rt.pattern)
		item, _ := paths[path].(obj)
		if item == nil {
			item = obj{}
			paths[path] = item
		}
		item[strings.ToLower(rt.method)] = s.operation(rt, params)
	}
	doc := obj{
		"openapi": "3.1.0",
		"info": obj{"title": "neovratz API", "version": versionString(s.cfg.Version),
			"description": "OpenAI-compatible inference, async jobs and administration of a neovratz server. " +
				"Every inference call is a job on the broker; errors use OpenAI's envelope."},
		"paths":      paths,
		"components": obj{"schemas": schemas(), "securitySchemes": obj{"bearer": obj{"type": "http", "scheme": "bearer", "description": "An API key, nvk_<id>_<secret>."}}},
	}
	if s.cfg.WorkerHandler != nil {
		doc["x-neovratz-mounts"] = []obj{{"prefix": workerPrefix, "scope": "worker",
			"description": "Workers over HTTP (reserve, events, heartbeat, complete); a key with the worker scope."}}
	}
	return doc
}

func versionString(v any) string {
	if b, err := json.Marshal(v); err == nil {
		var m struct{ Version string }
		if json.Unmarshal(b, &m) == nil && m.Version != "" {
			return m.Version
		}
	}
	return "dev"
}

// openapiPath turns a mux pattern into an OpenAPI path and its parameter names.
func openapiPath(pattern string) (string, []string) {
	var params []string
	segs := strings.Split(pattern, "/")
	for i, seg := range segs {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			name := strings.TrimSuffix(strings.TrimSuffix(seg[1:len(seg)-1], "..."), "$")
			params = append(params, name)
			segs[i] = "{" + name + "}"
		}
	}
	return strings.Join(segs, "/"), params
}

func (s *Server) operation(rt route, params []string) obj {
	d := rt.doc
	op := obj{"summary": d.summary, "tags": []string{d.tag}, "operationId": operationID(rt)}
	if rt.scope != "" {
		op["security"] = []obj{{"bearer": []string{}}}
		op["x-neovratz-scope"] = string(rt.scope)
	} else {
		op["security"] = []obj{}
	}
	var ps []obj
	for _, p := range params {
		ps = append(ps, obj{"name": p, "in": "path", "required": true, "schema": obj{"type": "string"}})
	}
	if len(ps) > 0 {
		op["parameters"] = ps
	}
	if d.req != "" {
		op["requestBody"] = obj{"required": true, "content": obj{"application/json": obj{"schema": ref(d.req)}}}
	}
	status := d.status
	if status == 0 {
		status = 200
	}
	content := obj{}
	switch d.resp {
	case "text":
		content["text/plain"] = obj{"schema": obj{"type": "string"}}
	case "png":
		content["image/png"] = obj{"schema": obj{"type": "string", "contentEncoding": "binary"}}
	case "events":
		content["text/event-stream"] = obj{"schema": obj{"type": "string"}}
	case "object":
		content["application/json"] = obj{"schema": obj{"type": "object"}}
	default:
		content["application/json"] = obj{"schema": ref(d.resp)}
	}
	if d.stream {
		content["text/event-stream"] = obj{"schema": obj{"type": "string", "description": "data: <chunk JSON> events, then data: [DONE]"}}
	}
	resps := obj{strconv.Itoa(status): obj{"description": "Success.", "content": content}}
	errs := append([]int(nil), d.also...)
	if rt.scope != "" {
		errs = append(errs, 401, 403, 429)
	}
	errs = append(errs, 500)
	for _, code := range errs {
		resps[strconv.Itoa(code)] = obj{"description": http.StatusText(code),
			"content": obj{"application/json": obj{"schema": ref("Error")}}}
	}
	op["responses"] = resps
	return op
}

func operationID(rt route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(rt.method))
	for _, seg := range strings.Split(rt.pattern, "/") {
		seg = strings.Trim(seg, "{}.")
		for _, part := range strings.FieldsFunc(seg, func(r rune) bool { return r == '-' || r == '.' || r == '_' }) {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

func ref(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

func str(desc string) obj { return obj{"type": "string", "description": desc} }

var (
	integer = obj{"type": "integer"}
	number  = obj{"type": "number"}
	boolean = obj{"type": "boolean"}
	stringT = obj{"type": "string"}
	anyT    = obj{}
)

func object(required []string, props obj) obj {
	o := obj{"type": "object", "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func arrayOf(items obj) obj { return obj{"type": "array", "items": items} }

func listOf(name string) obj {
	return object([]string{"object", "data"}, obj{"object": obj{"const": "list"}, "data": arrayOf(ref(name))})
}

// schemas are the bodies the API reads and writes (the essential fields; OpenAI's own
// reference has every detail of the compatible ones).
func schemas() obj {
	sampling := obj{"temperature": number, "top_p": number, "top_k": integer, "min_p": number, "presence_penalty": number,
		"frequency_penalty": number, "repetition_penalty": number, "seed": integer,
		"stop": obj{"oneOf": []obj{stringT, arrayOf(stringT)}}, "n": integer, "user": stringT,
		"stream": boolean, "stream_options": object(nil, obj{"include_usage": boolean})}
	with := func(base obj, extra obj) obj {
		out := obj{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	return obj{
		"Error": object([]string{"error"}, obj{"error": object([]string{"message", "type"}, obj{
			"message": stringT, "type": stringT, "param": obj{"type": []string{"string", "null"}}, "code": obj{"type": []string{"string", "null"}}})}),
		"Version": object(nil, obj{"version": stringT, "commit": stringT, "go": stringT, "os": stringT, "arch": stringT}),
		"Usage":   object([]string{"prompt_tokens", "completion_tokens", "total_tokens"}, obj{"prompt_tokens": integer, "completion_tokens": integer, "total_tokens": integer}),
		"Model": object([]string{"id", "object", "created", "owned_by"}, obj{"id": stringT, "object": obj{"const": "model"}, "created": integer,
			"owned_by": stringT, "kind": str("text, image or embedding"), "context_length": integer}),
		"ModelList": listOf("Model"),
		"Message": object([]string{"role", "content"}, obj{"role": obj{"enum": []string{"system", "developer", "user", "assistant"}},
			"content": obj{"oneOf": []obj{stringT, arrayOf(object([]string{"type", "text"}, obj{"type": obj{"const": "text"}, "text": stringT}))}}}),
		"ChatCompletionRequest": object([]string{"model", "messages"}, with(sampling, obj{"model": stringT, "messages": arrayOf(ref("Message")),
			"max_tokens": integer, "max_completion_tokens": integer, "logprobs": boolean, "top_logprobs": integer})),
		"ChatCompletion": object([]string{"id", "object", "created", "model", "choices"}, obj{"id": stringT, "object": obj{"const": "chat.completion"},
			"created": integer, "model": stringT, "usage": ref("Usage"), "choices": arrayOf(object(nil, obj{"index": integer,
				"message": object(nil, obj{"role": stringT, "content": stringT}), "finish_reason": obj{"enum": []string{"stop", "length"}}, "logprobs": anyT}))}),
		"CompletionRequest": object([]string{"model", "prompt"}, with(sampling, obj{"model": stringT, "prompt": stringT,
			"max_tokens": integer, "logprobs": integer, "echo": boolean})),
		"Completion": object([]string{"id", "object", "created", "model", "choices"}, obj{"id": stringT, "object": obj{"const": "text_completion"},
			"created": integer, "model": stringT, "usage": ref("Usage"), "choices": arrayOf(object(nil, obj{"index": integer, "text": stringT,
				"finish_reason": obj{"enum": []any{"stop", "length", nil}}, "logprobs": anyT}))}),
		"EmbeddingRequest": object([]string{"model", "input"}, obj{"model": stringT, "input": obj{"oneOf": []obj{stringT, arrayOf(stringT)}},
			"encoding_format": obj{"enum": []string{"float", "base64"}}, "user": stringT,
			"dimensions": obj{"type": "integer", "minimum": 1, "description": "cut each embedding to this many values, scaled back to unit length; at most the model's size"}}),
		"EmbeddingList": object([]string{"object", "data", "model", "usage"}, obj{"object": obj{"const": "list"}, "model": stringT, "usage": ref("Usage"),
			"data": arrayOf(object(nil, obj{"object": obj{"const": "embedding"}, "index": integer, "embedding": obj{"oneOf": []obj{arrayOf(number), stringT}}}))}),
		"ImageRequest": object([]string{"model", "prompt"}, obj{"model": stringT, "prompt": stringT, "n": integer, "size": str("WIDTHxHEIGHT"),
			"response_format": obj{"enum": []string{"b64_json", "url"}}, "negative_prompt": stringT, "steps": integer, "cfg_scale": number,
			"seed": integer, "sampler": stringT, "user": stringT}),
		"ImagesResponse": object([]string{"created", "data"}, obj{"created": integer, "data": arrayOf(object(nil, obj{"b64_json": stringT, "url": stringT}))}),
		"JobRequest": object([]string{"kind", "input"}, obj{"kind": obj{"enum": []string{"chat", "completion", "embedding", "image"}},
			"model": str("optional when input.model is set"), "input": obj{"type": "object", "description": "the body of the matching OpenAI request"},
			"priority": obj{"enum": []string{"high", "normal", "low"}}, "max_attempts": integer,
			"webhook": object([]string{"url", "secret"}, obj{"url": str("http or https URL of a public address (or of a network the operator allows)"), "secret": str("16-256 bytes; deliveries carry Neovratz-Signature: t=<unix>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">")})}),
		"Job": object([]string{"id", "object", "kind", "model", "status"}, obj{"id": stringT, "object": obj{"const": "job"},
			"kind": stringT, "model": stringT, "status": obj{"enum": []string{"queued", "running", "succeeded", "failed", "canceled", "expired"}},
			"priority": stringT, "attempts": integer, "max_attempts": integer, "queue_position": integer, "idempotency_key": stringT,
			"created_at": str("RFC 3339"), "started_at": stringT, "finished_at": stringT, "deadline": stringT,
			"result": obj{"description": "the matching OpenAI response, once succeeded"}, "error": object(nil, obj{"code": stringT, "message": stringT, "retryable": boolean})}),
		"JobList": object([]string{"object", "data"}, obj{"object": obj{"const": "list"}, "data": arrayOf(ref("Job")), "has_more": boolean, "next_cursor": stringT}),
		"Limits":  object(nil, obj{"requests_per_minute": integer, "tokens_per_minute": integer, "concurrent_jobs": integer}),
		"KeyRequest": object([]string{"name", "scopes"}, obj{"name": stringT, "scopes": arrayOf(obj{"enum": []string{"inference", "jobs", "admin", "worker", "metrics"}}),
			"models": arrayOf(stringT), "limits": ref("Limits"), "expires_at": stringT, "expires_in": str("seconds from now")}),
		"Key": object([]string{"id", "name", "scopes"}, obj{"id": stringT, "name": stringT, "scopes": arrayOf(stringT), "models": arrayOf(stringT),
			"limits": ref("Limits"), "created_at": stringT, "expires_at": stringT, "revoked_at": stringT}),
		"KeyCreated": obj{"allOf": []obj{ref("Key"), object([]string{"key"}, obj{"key": str("the token nvk_<id>_<secret>, shown only once")})}},
		"KeyList":    listOf("Key"),
		"Worker": object([]string{"id", "models", "slots"}, obj{"id": stringT, "hostname": stringT, "version": stringT, "models": arrayOf(stringT),
			"slots": integer, "engine": stringT, "hardware": stringT, "metrics_addr": stringT, "draining": boolean,
			"started_at": stringT, "last_heartbeat": stringT, "model_info": arrayOf(object(nil, obj{"name": stringT, "kind": stringT, "context_length": integer}))}),
		"WorkerList": listOf("Worker"),
		"QueueList": object([]string{"object", "data"}, obj{"object": obj{"const": "list"}, "data": arrayOf(object(nil, obj{
			"model": stringT, "depth": integer, "running": integer, "oldest_queued_age_seconds": number}))}),
	}
}
