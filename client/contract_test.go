package client

import (
	"bytes"
	"context"
	"encoding"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// loadDocument loads the API's OpenAPI document with every $ref resolved.
func loadDocument(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile("../cmd/api/openapi.yaml")
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return doc
}

// operation finds a route's operation in the document, with a schema path
// for messages.
func operation(doc *openapi3.T, rt route) (*openapi3.Operation, string) {
	method, path, _ := strings.Cut(string(rt), " ")
	item := doc.Paths.Find(path)
	if item == nil {
		return nil, ""
	}
	return item.GetOperation(method), "paths." + path + "." + strings.ToLower(method)
}

// documentGaps are requests the client makes that the document does not
// describe yet, each with why the client is right. An entry here must
// still be a gap: once the document describes the request, the entry
// fails and the full check runs instead.
var documentGaps = map[route]string{}

// Every exported method of Client has its requests in calls, and every
// field of every type it sends or reads is in the OpenAPI document's
// schema at the same place with the same JSON type; every property a
// request schema requires is a field the client sends.
func TestCallsMatchTheOpenAPIDocument(t *testing.T) {
	doc := loadDocument(t)
	ct := reflect.TypeFor[*Client]()
	for i := range ct.NumMethod() {
		if _, ok := calls[ct.Method(i).Name]; !ok {
			t.Errorf("%s: the method has no entry in calls (client.go)", ct.Method(i).Name)
		}
	}
	problem, ok := doc.Components.Schemas["Problem"]
	if !ok {
		t.Fatal("openapi.yaml has no Problem schema")
	}
	for _, e := range walk(reflect.TypeFor[Problem](), problem.Value, false, "Problem", "components.schemas.Problem") {
		t.Errorf("Problem: %s", e)
	}

	names := make([]string, 0, len(calls))
	for n := range calls {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		m, ok := ct.MethodByName(name)
		if !ok {
			t.Errorf("%s: in calls, but Client has no such method", name)
			continue
		}
		for _, c := range calls[name] {
			for _, e := range checkCall(doc, m, c) {
				t.Errorf("%s (%s): %s", name, c.route, e)
			}
		}
	}
}

// checkCall holds one entry of calls against its operation.
func checkCall(doc *openapi3.T, m reflect.Method, c call) []string {
	op, at := operation(doc, c.route)
	if op == nil {
		return []string{"the route is not in openapi.yaml"}
	}
	var errs []string

	// What the method returns is what the table says it reads.
	if c.out != nil {
		if got := m.Type.Out(0); got != reflect.TypeOf(c.out) {
			errs = append(errs, fmt.Sprintf("the method returns %v, calls says it reads %T", got, c.out))
		}
	}

	// The request body.
	var body *openapi3.RequestBody
	if op.RequestBody != nil {
		body = op.RequestBody.Value
	}
	if reason, gap := documentGaps[c.route]; gap {
		if body != nil {
			errs = append(errs, fmt.Sprintf("%s.requestBody is documented now: remove the route from documentGaps (%s)", at, reason))
		}
	} else {
		switch {
		case c.in == nil && body != nil && body.Required:
			errs = append(errs, fmt.Sprintf("%s.requestBody is required; the client sends none", at))
		case c.in != nil && body == nil:
			errs = append(errs, fmt.Sprintf("the client sends %T; %s has no requestBody", c.in, at))
		case c.in != nil:
			mt := body.Content.Get(mediaJSON)
			if mt == nil || mt.Schema == nil {
				errs = append(errs, fmt.Sprintf("%s.requestBody has no %s schema", at, mediaJSON))
				break
			}
			errs = append(errs, walk(reflect.TypeOf(c.in), mt.Schema.Value, true, "body", at+".requestBody.content."+mediaJSON+".schema")...)
		}
	}

	// The 2xx answers.
	ok := false
	for code, r := range op.Responses.Map() {
		if !strings.HasPrefix(code, "2") || r.Value == nil || len(r.Value.Content) == 0 {
			continue
		}
		mt := r.Value.Content.Get(c.media)
		if mt == nil {
			errs = append(errs, fmt.Sprintf("%s.responses.%s has no %s content (the client reads that)", at, code, c.media))
			continue
		}
		ok = true
		if c.out == nil {
			continue
		}
		where := at + ".responses." + code + ".content." + c.media + ".schema"
		var s *openapi3.Schema
		if mt.Schema != nil {
			s = mt.Schema.Value
		}
		if c.schema != "" {
			ref, found := doc.Components.Schemas[c.schema]
			if !found {
				errs = append(errs, fmt.Sprintf("components.schemas.%s does not exist", c.schema))
				continue
			}
			s, where = ref.Value, "components.schemas."+c.schema
		}
		if s == nil {
			errs = append(errs, fmt.Sprintf("%s is missing", where))
			continue
		}
		errs = append(errs, walk(reflect.TypeOf(c.out), s, false, "answer", where)...)
	}
	if !ok {
		errs = append(errs, fmt.Sprintf("%s documents no 2xx answer with %s content", at, c.media))
	}

	// Every problem+json answer that is not the Problem schema (held
	// above) is what Problem reads.
	for code, r := range op.Responses.Map() {
		if r.Value == nil {
			continue
		}
		if mt := r.Value.Content.Get("application/problem+json"); mt != nil && mt.Schema != nil && mt.Schema.Value != doc.Components.Schemas["Problem"].Value {
			errs = append(errs, walk(reflect.TypeFor[Problem](), mt.Schema.Value, false, "Problem", at+".responses."+code)...)
		}
	}
	return errs
}

var (
	typeTime      = reflect.TypeFor[time.Time]()
	typeRaw       = reflect.TypeFor[json.RawMessage]()
	typeMarshaler = reflect.TypeFor[json.Marshaler]()
	typeText      = reflect.TypeFor[encoding.TextMarshaler]()
)

// walk compares a Go type with the schema at the same place: request
// tells a type the client sends from one it reads. goPath and schemaPath
// name the place in messages.
func walk(typ reflect.Type, s *openapi3.Schema, request bool, goPath, schemaPath string) []string {
	if s == nil {
		return nil
	}
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	// oneOf and anyOf: the type fits one of the alternatives.
	for kw, alts := range map[string]openapi3.SchemaRefs{"oneOf": s.OneOf, "anyOf": s.AnyOf} {
		if len(alts) == 0 {
			continue
		}
		var all []string
		fits := false
		for i, a := range alts {
			e := walk(typ, a.Value, request, goPath, fmt.Sprintf("%s.%s[%d]", schemaPath, kw, i))
			if len(e) == 0 {
				fits = true
				break
			}
			all = append(all, e...)
		}
		if !fits {
			return append([]string{fmt.Sprintf("%s (%v) fits none of %s.%s:", goPath, typ, schemaPath, kw)}, all...)
		}
	}
	types, props, required, additional := merged(s)

	switch {
	case typ == typeRaw || typ.Kind() == reflect.Interface:
		return nil // any JSON value
	case typ == typeTime || typ.Implements(typeText) || reflect.PointerTo(typ).Implements(typeText):
		return kind("string", types, goPath, schemaPath)
	case typ.Implements(typeMarshaler) || reflect.PointerTo(typ).Implements(typeMarshaler):
		return []string{fmt.Sprintf("%s: %v marshals itself; teach walk its JSON type", goPath, typ)}
	}

	switch typ.Kind() {
	case reflect.String:
		return kind("string", types, goPath, schemaPath)
	case reflect.Bool:
		return kind("boolean", types, goPath, schemaPath)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return kind("integer", types, goPath, schemaPath)
	case reflect.Float32, reflect.Float64:
		if !request && types.Includes("integer") {
			return nil // a float reads an integer
		}
		return kind("number", types, goPath, schemaPath)
	case reflect.Slice, reflect.Array:
		if typ.Elem().Kind() == reflect.Uint8 {
			return kind("string", types, goPath, schemaPath) // base64
		}
		if e := kind("array", types, goPath, schemaPath); e != nil {
			return e
		}
		if s.Items == nil {
			return nil
		}
		return walk(typ.Elem(), s.Items.Value, request, goPath+"[]", schemaPath+".items")
	case reflect.Map:
		if e := kind("object", types, goPath, schemaPath); e != nil {
			return e
		}
		if additional.Schema != nil {
			return walk(typ.Elem(), additional.Schema.Value, request, goPath+"[*]", schemaPath+".additionalProperties")
		}
		if len(props) > 0 && request {
			return []string{fmt.Sprintf("%s: a map sends any key; %s names its properties", goPath, schemaPath)}
		}
		return nil
	case reflect.Struct:
		if e := kind("object", types, goPath, schemaPath); e != nil {
			return e
		}
		var errs []string
		fields := jsonFields(typ)
		for _, f := range fields {
			fp := goPath + "." + f.name
			p, ok := props[f.name]
			switch {
			case ok:
				if request && f.pointer && !f.omitempty && !nullable(p.Value) {
					errs = append(errs, fmt.Sprintf("%s can be sent as null; %s.properties.%s does not take null", fp, schemaPath, f.name))
				}
				errs = append(errs, walk(f.typ, p.Value, request, fp, schemaPath+".properties."+f.name)...)
			case additional.Schema != nil:
				errs = append(errs, walk(f.typ, additional.Schema.Value, request, fp, schemaPath+".additionalProperties")...)
			case additional.Has != nil && *additional.Has:
			default:
				errs = append(errs, fmt.Sprintf("%s is not a property of %s", fp, schemaPath))
			}
		}
		if request {
			for _, r := range required {
				i := slices.IndexFunc(fields, func(f jsonField) bool { return f.name == r })
				switch {
				case i < 0:
					errs = append(errs, fmt.Sprintf("%s requires %q; %s (%v) has no such field", schemaPath, r, goPath, typ))
				case fields[i].omitempty:
					errs = append(errs, fmt.Sprintf("%s requires %q; %s.%s is omitempty, so its zero value is not sent", schemaPath, r, goPath, r))
				}
			}
		}
		return errs
	}
	return []string{fmt.Sprintf("%s: %v has no JSON type walk knows", goPath, typ)}
}

// merged is a schema's types, properties, required names and
// additionalProperties with those of its allOf parts.
func merged(s *openapi3.Schema) (types *openapi3.Types, props openapi3.Schemas, required []string, additional openapi3.AdditionalProperties) {
	props = openapi3.Schemas{}
	var add func(*openapi3.Schema)
	add = func(s *openapi3.Schema) {
		if s.Type != nil && len(*s.Type) > 0 {
			types = s.Type
		}
		for n, p := range s.Properties {
			props[n] = p
		}
		required = append(required, s.Required...)
		if s.AdditionalProperties.Has != nil || s.AdditionalProperties.Schema != nil {
			additional = s.AdditionalProperties
		}
		for _, a := range s.AllOf {
			add(a.Value)
		}
	}
	add(s)
	return types, props, required, additional
}

// kind checks that the schema's types (none: any) take a JSON type.
func kind(want string, types *openapi3.Types, goPath, schemaPath string) []string {
	if types.Permits(want) || len(*types) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("%s is a JSON %s; %s is %v", goPath, want, schemaPath, types.Slice())}
}

func nullable(s *openapi3.Schema) bool {
	if s == nil || s.Nullable {
		return true
	}
	types, _, _, _ := merged(s)
	return types == nil || len(*types) == 0 || types.Includes("null")
}

type jsonField struct {
	name               string
	typ                reflect.Type
	omitempty, pointer bool
}

// jsonFields are the fields encoding/json reads and writes for a struct,
// with embedded structs' fields promoted.
func jsonFields(typ reflect.Type) []jsonField {
	var out []jsonField
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				out = append(out, jsonFields(et)...)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		jf := jsonField{name: name, typ: f.Type, pointer: f.Type.Kind() == reflect.Pointer}
		for o := range strings.SplitSeq(opts, ",") {
			switch o {
			case "omitempty", "omitzero":
				jf.omitempty = true
			case "string":
				jf.typ = reflect.TypeFor[string]()
			}
		}
		out = append(out, jf)
	}
	return out
}

// sent is one request a recording server received.
type sent struct {
	route string
	body  []byte
}

// recorder answers each route of calls the way the API does, minimally,
// and keeps what it received.
func recorder(t *testing.T) (*httptest.Server, func() []sent) {
	t.Helper()
	var mu sync.Mutex
	var got []sent
	mux := http.NewServeMux()
	for _, r := range Routes {
		mux.HandleFunc(r, func(w http.ResponseWriter, req *http.Request) {
			b, _ := io.ReadAll(req.Body)
			mu.Lock()
			got = append(got, sent{route: r, body: b})
			mu.Unlock()
			switch route(r) {
			case rJobEvents:
				w.Header().Set("Content-Type", mediaEvents)
				_, _ = io.WriteString(w, "event: job\ndata: {\"id\":\"j1\",\"state\":\"succeeded\"}\n\n")
			case rDownload:
				w.Header().Set("Content-Type", mediaZIP)
				_, _ = io.WriteString(w, "PK")
			case rJob, rCancel:
				w.Header().Set("Content-Type", mediaJSON)
				_, _ = io.WriteString(w, `{"id":"j1","state":"succeeded"}`)
			default:
				w.Header().Set("Content-Type", mediaJSON)
				_, _ = io.WriteString(w, `{}`)
			}
		})
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, func() []sent {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// invocations call each method of Client with arguments an app would pass.
var invocations = map[string]func(context.Context, *Client) error{
	"Enqueue": func(ctx context.Context, c *Client) error {
		_, err := c.Enqueue(ctx, Task{Type: "system:ping", Queue: "low", HoldMS: 10})
		return err
	},
	"Ping": func(ctx context.Context, c *Client) error { _, err := c.Ping(ctx, "default"); return err },
	"RecomputeOrphans": func(ctx context.Context, c *Client) error {
		_, err := c.RecomputeOrphans(ctx)
		return err
	},
	"Job":     func(ctx context.Context, c *Client) error { _, err := c.Job(ctx, "j1"); return err },
	"Cancel":  func(ctx context.Context, c *Client) error { _, err := c.Cancel(ctx, "j1"); return err },
	"WaitJob": func(ctx context.Context, c *Client) error { _, err := c.WaitJob(ctx, "j1"); return err },
	"Summarize": func(ctx context.Context, c *Client) error {
		_, err := c.Summarize(ctx, SummaryRequest{Module: "accounts", RecordID: "acc-1", Regenerate: true}, User("user-1"))
		return err
	},
	"Summary": func(ctx context.Context, c *Client) error { _, err := c.Summary(ctx, "j1"); return err },
	"RefreshSegments": func(ctx context.Context, c *Client) error {
		_, err := c.RefreshSegments(ctx, "rfm")
		return err
	},
	"ExportSegment": func(ctx context.Context, c *Client) error {
		if _, err := c.ExportSegment(ctx, 7, ExportRequest{}); err != nil {
			return err
		}
		_, err := c.ExportSegment(ctx, 7, ExportRequest{Fields: []string{"id", "name"}, Excel: true})
		return err
	},
	"Export": func(ctx context.Context, c *Client) error { _, err := c.Export(ctx, 7); return err },
	"Download": func(ctx context.Context, c *Client) error {
		rc, err := c.Download(ctx, 7)
		if err != nil {
			return err
		}
		return rc.Close()
	},
	"Enrich": func(ctx context.Context, c *Client) error { _, err := c.Enrich(ctx, "acc-1"); return err },
	"EnrichBulk": func(ctx context.Context, c *Client) error {
		if _, err := c.EnrichBulk(ctx, []string{"acc-1", "acc-2"}, 0); err != nil {
			return err
		}
		_, err := c.EnrichBulk(ctx, nil, 7)
		return err
	},
	"Enrichment": func(ctx context.Context, c *Client) error { _, err := c.Enrichment(ctx, "j1"); return err },
}

// Each method makes only the requests calls lists for it, and each body
// it sends is of the type calls names (no key outside it) and valid for
// the operation's request schema, so the table cannot drift from the
// methods it describes.
func TestMethodsSendWhatCallsSays(t *testing.T) {
	doc := loadDocument(t)
	ct := reflect.TypeFor[*Client]()
	for i := range ct.NumMethod() {
		name := ct.Method(i).Name
		t.Run(name, func(t *testing.T) {
			invoke, ok := invocations[name]
			if !ok {
				t.Fatalf("%s: no invocation in contract_test.go", name)
			}
			srv, received := recorder(t)
			if err := invoke(t.Context(), New(srv.URL, "k")); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got := received()
			if len(got) == 0 {
				t.Fatalf("%s sent no request", name)
			}
			for _, s := range got {
				i := slices.IndexFunc(calls[name], func(c call) bool { return string(c.route) == s.route })
				if i < 0 {
					t.Errorf("%s sent %s, which calls does not list for it", name, s.route)
					continue
				}
				c := calls[name][i]
				if c.in == nil {
					if len(s.body) > 0 {
						t.Errorf("%s (%s) sent a body, calls says none: %s", name, s.route, s.body)
					}
					continue
				}
				if len(s.body) == 0 {
					continue // an optional body left out (RefreshSegments of every technique)
				}
				dec := json.NewDecoder(bytes.NewReader(s.body))
				dec.DisallowUnknownFields()
				if err := dec.Decode(reflect.New(reflect.TypeOf(c.in)).Interface()); err != nil {
					t.Errorf("%s (%s) sent %s, which is not a %T: %v", name, s.route, s.body, c.in, err)
				}
				if _, gap := documentGaps[c.route]; gap {
					continue
				}
				op, at := operation(doc, c.route)
				var v any
				if err := json.Unmarshal(s.body, &v); err != nil {
					t.Fatal(err)
				}
				schema := op.RequestBody.Value.Content.Get(mediaJSON).Schema.Value
				if err := schema.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.VisitAsRequest()); err != nil {
					t.Errorf("%s (%s) sent %s, which %s.requestBody refuses: %v", name, s.route, s.body, at, err)
				}
			}
		})
	}
}

// The walk finds each kind of drift it is meant to find.
func TestWalkFindsDrift(t *testing.T) {
	doc := loadDocument(t)
	job := doc.Components.Schemas["Job"].Value
	type renamed struct {
		ID    string `json:"id"`
		State string `json:"status"`
	}
	type retyped struct {
		Progress string `json:"progress"`
	}
	type nested struct {
		Jobs []struct {
			When time.Time `json:"created_at"`
			Odd  int       `json:"odd"`
		} `json:"jobs"`
	}
	type hidden struct {
		ID    string `json:"id"`
		Other string `json:"-"`
	}
	list := &openapi3.Schema{Type: &openapi3.Types{"object"}, Properties: openapi3.Schemas{
		"jobs": {Value: &openapi3.Schema{Type: &openapi3.Types{"array"}, Items: openapi3.NewSchemaRef("", job)}},
	}}
	for _, tc := range []struct {
		typ  reflect.Type
		s    *openapi3.Schema
		want string
	}{
		{reflect.TypeFor[renamed](), job, "answer.status is not a property of Job"},
		{reflect.TypeFor[retyped](), job, "answer.progress is a JSON string; Job.properties.progress is [integer]"},
		{reflect.TypeFor[nested](), list, "answer.jobs[].odd is not a property of Job.properties.jobs.items"},
		{reflect.TypeFor[hidden](), job, ""},
	} {
		errs := walk(tc.typ, tc.s, false, "answer", "Job")
		if got := strings.Join(errs, "; "); got != tc.want && !(tc.want == "" && len(errs) == 0) {
			t.Errorf("%v: %q, want %q", tc.typ, got, tc.want)
		}
	}

	// A request type that leaves out a required property.
	op, at := operation(doc, rSummarize)
	body := op.RequestBody.Value.Content.Get(mediaJSON).Schema.Value
	type partial struct {
		Module string `json:"module"`
	}
	errs := walk(reflect.TypeFor[partial](), body, true, "body", at)
	if len(errs) != 1 || !strings.Contains(errs[0], `requires "record_id"`) {
		t.Errorf("a request without record_id: %v", errs)
	}
	type dropped struct {
		Module   string `json:"module"`
		RecordID string `json:"record_id,omitempty"`
	}
	if errs := walk(reflect.TypeFor[dropped](), body, true, "body", at); len(errs) != 1 || !strings.Contains(errs[0], "omitempty") {
		t.Errorf("a request that can drop record_id: %v", errs)
	}
}
