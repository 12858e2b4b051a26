package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The test runs in deploy/; the repository root is one up.
const root = ".."

// procToService maps each Procfile process to its compose service and its
// Kubernetes workload (Job or Deployment) name.
var procToService = map[string]struct{ compose, k8s string }{
	"release": {"migrate", "crmq-migrate"},
	"web":     {"api", "crmq-api"},
	"worker":  {"worker", "crmq-worker"},
	"clock":   {"scheduler", "crmq-scheduler"},
}

// ---- inputs ----

type procfileEntry struct{ name, command string }

func readProcfile(t *testing.T) []procfileEntry {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "Procfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []procfileEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, cmd, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("Procfile: no colon in %q", line)
		}
		if i := strings.Index(cmd, "#"); i >= 0 {
			cmd = cmd[:i]
		}
		out = append(out, procfileEntry{strings.TrimSpace(name), strings.Join(strings.Fields(cmd), " ")})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("Procfile: no processes")
	}
	return out
}

// configVars reads cmd/internal/config/config.go as text (the package is
// internal to cmd/, so it cannot be imported here) and returns the names
// and defaults in its Vars list.
func configVars(t *testing.T) map[string]string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(root, "cmd", "internal", "config", "config.go"))
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)\nvar Vars = \[\]Var\{\n(.*?)\n\}\n`).FindSubmatch(src)
	if block == nil {
		t.Fatal("config.go: `var Vars = []Var{ ... }` not found")
	}
	entry := regexp.MustCompile(`\{\s*"([A-Z][A-Z0-9_]*)"\s*,\s*"((?:[^"\\]|\\.)*)"`)
	vars := map[string]string{}
	for _, m := range entry.FindAllSubmatch(block[1], -1) {
		vars[string(m[1])] = string(m[2])
	}
	for _, must := range []string{"DATABASE_URL", "REDIS_URL", "HTTP_ADDR", "CRMQ_ADMIN_KEY", "CRMQ_SHUTDOWN_TIMEOUT"} {
		if _, ok := vars[must]; !ok {
			t.Fatalf("config.go Vars: %s not found; is the regexp out of date? got %v", must, vars)
		}
	}
	return vars
}

// binaries are the commands the image must contain: the first word of each
// Procfile command, crmq (the operator CLI), and any directory under cmd/
// that already holds a main package. Not only what is on disk: the
// binaries may not be written yet, and the image must still build them.
func binaries(t *testing.T, procs []procfileEntry) []string {
	t.Helper()
	set := map[string]bool{"crmq": true}
	for _, p := range procs {
		set[strings.Fields(p.command)[0]] = true
	}
	dirs, err := os.ReadDir(filepath.Join(root, "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if d.IsDir() && d.Name() != "internal" && hasMainPackage(t, filepath.Join(root, "cmd", d.Name())) {
			set[d.Name()] = true
		}
	}
	out := make([]string, 0, len(set))
	for b := range set {
		out = append(out, b)
	}
	slices.Sort(out)
	return out
}

func hasMainPackage(t *testing.T, dir string) bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.PackageClauseOnly)
		if err != nil {
			t.Fatal(err)
		}
		if af.Name.Name == "main" {
			return true
		}
	}
	return false
}

// ---- compose ----

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       *composeBuild     `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	StopGracePeriod string `yaml:"stop_grace_period"`
	Restart         string `yaml:"restart"`
	Healthcheck     *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c
}

// appServices are the compose services that run the crmq image.
func appServices(c composeFile) map[string]composeService {
	out := map[string]composeService{}
	for name, s := range c.Services {
		if s.Build != nil {
			out[name] = s
		}
	}
	return out
}

// ---- kubernetes ----

type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		// Service (its spec.selector is read from raw: a plain map, not matchLabels)
		Ports []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
	raw map[string]any
}

type podSpec struct {
	TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
	} `yaml:"securityContext"`
	Containers     []container `yaml:"containers"`
	InitContainers []container `yaml:"initContainers"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	EnvFrom []struct {
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

// readK8s parses every document of every file in k8s/, the Secret
// template included, keyed by kind/name.
func readK8s(t *testing.T) map[string]k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("k8s", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("k8s/: no files (%v)", err)
	}
	objs := map[string]k8sObject{}
	for _, f := range files {
		if !strings.HasSuffix(f, ".yaml") && !strings.HasSuffix(f, ".yaml.template") {
			t.Errorf("%s: unexpected file in k8s/", f)
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var node yaml.Node
			err := dec.Decode(&node)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var o k8sObject
			if err := node.Decode(&o); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if err := node.Decode(&o.raw); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.Kind == "" || o.Metadata.Name == "" {
				t.Fatalf("%s: a document without kind or metadata.name", f)
			}
			if o.Metadata.Namespace != "" {
				t.Errorf("%s: %s/%s sets a namespace; the manifests are namespace-less", f, o.Kind, o.Metadata.Name)
			}
			key := o.Kind + "/" + o.Metadata.Name
			if _, dup := objs[key]; dup {
				t.Fatalf("%s: %s defined twice", f, key)
			}
			objs[key] = o
		}
	}
	return objs
}

// ---- tests ----

// Every Procfile process has a compose service and a Kubernetes workload
// that run the same command, and nothing runs that the Procfile lacks.
func TestProcfileProcessesAreDeployed(t *testing.T) {
	procs := readProcfile(t)
	apps := appServices(readCompose(t))
	objs := readK8s(t)

	seen := map[string]bool{}
	for _, p := range procs {
		m, ok := procToService[p.name]
		if !ok {
			t.Errorf("Procfile process %q has no compose service / k8s workload in procToService; add one", p.name)
			continue
		}
		seen[m.compose] = true
		s, ok := apps[m.compose]
		if !ok {
			t.Errorf("compose.yaml: no service %q (built from deploy/Dockerfile) for Procfile %s", m.compose, p.name)
		} else if got := strings.Join(s.Command, " "); got != p.command {
			t.Errorf("compose.yaml: service %s runs %q, Procfile %s runs %q", m.compose, got, p.name, p.command)
		}

		kind := "Deployment"
		if p.name == "release" {
			kind = "Job"
		}
		o, ok := objs[kind+"/"+m.k8s]
		if !ok {
			t.Errorf("k8s/: no %s %s for Procfile %s", kind, m.k8s, p.name)
			continue
		}
		cs := o.Spec.Template.Spec.Containers
		if len(cs) != 1 {
			t.Errorf("k8s %s %s: want one container, got %d", kind, m.k8s, len(cs))
			continue
		}
		if got := strings.Join(append(slices.Clone(cs[0].Command), cs[0].Args...), " "); got != p.command {
			t.Errorf("k8s %s %s runs %q, Procfile %s runs %q", kind, m.k8s, got, p.name, p.command)
		}
	}
	for name := range apps {
		if !seen[name] {
			t.Errorf("compose.yaml: service %q runs crmq but no Procfile process maps to it", name)
		}
	}
	for _, o := range objs {
		if (o.Kind == "Deployment" || o.Kind == "Job") && !slices.ContainsFunc(procs, func(p procfileEntry) bool {
			return procToService[p.name].k8s == o.Metadata.Name
		}) {
			t.Errorf("k8s %s %s: no Procfile process maps to it", o.Kind, o.Metadata.Name)
		}
	}
}

// The compose wiring the brief fixes: persistence, health checks and start order.
func TestComposeWiring(t *testing.T) {
	c := readCompose(t)
	redis, pg := c.Services["redis"], c.Services["postgres"]
	if !strings.HasPrefix(redis.Image, "redis:7") || !strings.Contains(strings.Join(redis.Command, " "), "--appendonly yes") {
		t.Errorf("redis: want image redis:7 with --appendonly yes, got %q %q", redis.Image, redis.Command)
	}
	if redis.Healthcheck == nil || !slices.Contains(redis.Healthcheck.Test, "ping") {
		t.Errorf("redis: want a redis-cli ping healthcheck")
	}
	if !strings.HasPrefix(pg.Image, "postgres:15") {
		t.Errorf("postgres: want image postgres:15, got %q", pg.Image)
	}
	if pg.Healthcheck == nil || !slices.Contains(pg.Healthcheck.Test, "pg_isready") {
		t.Errorf("postgres: want a pg_isready healthcheck")
	}
	for name, s := range appServices(c) {
		if s.Build.Dockerfile != "deploy/Dockerfile" || s.Build.Context != ".." {
			t.Errorf("%s: build must be context .. with dockerfile deploy/Dockerfile, got %+v", name, *s.Build)
		}
		for _, v := range []string{"DATABASE_URL", "REDIS_URL"} {
			if s.Environment[v] == "" {
				t.Errorf("%s: %s not set", name, v)
			}
		}
		want := map[string]string{"migrate": "service_completed_successfully", "redis": "service_healthy"}
		if name == "migrate" {
			want = map[string]string{"postgres": "service_healthy"}
			if s.Restart != "no" {
				t.Errorf("migrate: restart %q, want \"no\"", s.Restart)
			}
		}
		for dep, cond := range want {
			if got := s.DependsOn[dep].Condition; got != cond {
				t.Errorf("%s: depends_on %s condition %q, want %q", name, dep, got, cond)
			}
		}
	}
	if k := c.Services["api"].Environment["CRMQ_ADMIN_KEY"]; !strings.HasPrefix(k, "${CRMQ_ADMIN_KEY:?") {
		t.Errorf("api: CRMQ_ADMIN_KEY must come from the shell as ${CRMQ_ADMIN_KEY:?...}, got %q", k)
	}
}

// Every environment variable given to a crmq process is one crmq reads.
func TestEnvVarsExistInConfig(t *testing.T) {
	vars := configVars(t)
	check := func(where, name string) {
		if _, ok := vars[name]; !ok {
			t.Errorf("%s: %s is not in cmd/internal/config Vars", where, name)
		}
	}
	for name, s := range appServices(readCompose(t)) {
		for v := range s.Environment {
			check("compose.yaml service "+name, v)
		}
	}
	objs := readK8s(t)
	for key, o := range objs {
		for v := range o.StringData {
			check("k8s "+key, v)
		}
		if data, ok := o.raw["data"].(map[string]any); ok {
			for v := range data {
				check("k8s "+key, v)
			}
		}
		for _, c := range slices.Concat(o.Spec.Template.Spec.Containers, o.Spec.Template.Spec.InitContainers) {
			for _, e := range c.Env {
				check("k8s "+key+" container "+c.Name, e.Name)
			}
			for _, ef := range c.EnvFrom {
				if ef.SecretRef != nil {
					if _, ok := objs["Secret/"+ef.SecretRef.Name]; !ok {
						t.Errorf("k8s %s: envFrom Secret %q is not defined in k8s/", key, ef.SecretRef.Name)
					}
				}
				if ef.ConfigMapRef != nil {
					if _, ok := objs["ConfigMap/"+ef.ConfigMapRef.Name]; !ok {
						t.Errorf("k8s %s: envFrom ConfigMap %q is not defined in k8s/", key, ef.ConfigMapRef.Name)
					}
				}
			}
		}
	}
	// The processes need these; the API refuses to start without an admin key.
	for key, o := range objs {
		if o.Kind != "Secret" {
			continue
		}
		for _, v := range []string{"DATABASE_URL", "REDIS_URL", "CRMQ_ADMIN_KEY"} {
			if _, ok := o.StringData[v]; !ok {
				t.Errorf("k8s %s: no %s", key, v)
			}
		}
	}
	for _, v := range dockerfileFinalEnv(t) {
		check("Dockerfile final stage ENV", v)
	}
}

// dockerfileFinalEnv returns the names set with ENV in the last stage.
func dockerfileFinalEnv(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, ins := range dockerfileInstructions(t) {
		switch ins.op {
		case "FROM":
			names = nil
		case "ENV":
			for _, kv := range strings.Fields(ins.args) {
				name, _, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("Dockerfile: use ENV NAME=value, got ENV %s", ins.args)
				}
				names = append(names, name)
			}
		}
	}
	return names
}

type instruction struct{ op, args string }

// dockerfileInstructions joins continuation lines and drops comments; enough
// for this Dockerfile (no heredocs, no escape directive).
func dockerfileInstructions(t *testing.T) []instruction {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		op, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{strings.ToUpper(op), strings.Join(strings.Fields(args), " ")})
		cur.Reset()
	}
	return out
}

// The image builds every binary the Procfile runs plus crmq, into
// /usr/local/bin, and its default command is the Procfile's web process.
func TestDockerfileBuildsEveryBinary(t *testing.T) {
	procs := readProcfile(t)
	ins := dockerfileInstructions(t)
	var froms []string
	var builds []string
	var cmd string
	for _, i := range ins {
		switch i.op {
		case "FROM":
			froms = append(froms, i.args)
		case "RUN":
			if strings.Contains(i.args, "go build") {
				builds = append(builds, i.args)
			}
		case "CMD":
			cmd = i.args
		}
	}
	if len(froms) < 2 || !strings.HasPrefix(froms[0], "golang:1.26-bookworm") {
		t.Errorf("Dockerfile: want a golang:1.26-bookworm builder and a final stage, got FROM %q", froms)
	}
	if len(builds) != 1 {
		t.Fatalf("Dockerfile: want one RUN with go build, got %d", len(builds))
	}
	words := strings.Fields(builds[0])
	for _, want := range []string{"-trimpath", "/out/"} {
		if !slices.Contains(words, want) {
			t.Errorf("Dockerfile go build: %q missing in %q", want, builds[0])
		}
	}
	for _, b := range binaries(t, procs) {
		if !slices.Contains(words, "./cmd/"+b) {
			t.Errorf("Dockerfile go build does not build ./cmd/%s", b)
		}
	}
	var web string
	for _, p := range procs {
		if p.name == "web" {
			web = p.command
		}
	}
	if want := `["` + strings.Join(strings.Fields(web), `", "`) + `"]`; cmd != want {
		t.Errorf("Dockerfile CMD %s, want the Procfile web command %s", cmd, want)
	}
	if !slices.Contains(ins, instruction{"COPY", "--from=build /out/ /usr/local/bin/"}) {
		t.Error("Dockerfile: final stage must COPY --from=build /out/ /usr/local/bin/")
	}
	if !slices.Contains(ins, instruction{"EXPOSE", "8080"}) || !slices.Contains(ins, instruction{"ENV", "HTTP_ADDR=0.0.0.0:8080"}) {
		t.Error("Dockerfile: want EXPOSE 8080 and ENV HTTP_ADDR=0.0.0.0:8080")
	}
	if _, err := os.Stat("Dockerfile.dockerignore"); err != nil {
		t.Errorf("Dockerfile.dockerignore: %v", err)
	}
}

// The worker's grace period outlasts CRMQ_SHUTDOWN_TIMEOUT in compose and
// Kubernetes, or SIGKILL cuts the graceful shutdown short.
func TestWorkerGracePeriodExceedsShutdownTimeout(t *testing.T) {
	vars := configVars(t)
	timeout := func(where, set string) time.Duration {
		if set == "" {
			set = vars["CRMQ_SHUTDOWN_TIMEOUT"]
		}
		d, err := time.ParseDuration(set)
		if err != nil {
			t.Fatalf("%s: CRMQ_SHUTDOWN_TIMEOUT %q: %v", where, set, err)
		}
		return d
	}

	w := readCompose(t).Services["worker"]
	grace, err := time.ParseDuration(w.StopGracePeriod)
	if err != nil {
		t.Errorf("compose worker: stop_grace_period %q: %v (Docker's default is 10s)", w.StopGracePeriod, err)
	} else if st := timeout("compose worker", w.Environment["CRMQ_SHUTDOWN_TIMEOUT"]); grace <= st {
		t.Errorf("compose worker: stop_grace_period %s <= CRMQ_SHUTDOWN_TIMEOUT %s", grace, st)
	}

	d, ok := readK8s(t)["Deployment/crmq-worker"]
	if !ok {
		t.Fatal("k8s: no Deployment crmq-worker")
	}
	ps := d.Spec.Template.Spec
	kgrace := 30 * time.Second // the Kubernetes default
	if ps.TerminationGracePeriodSeconds != nil {
		kgrace = time.Duration(*ps.TerminationGracePeriodSeconds) * time.Second
	}
	var set string
	for _, e := range ps.Containers[0].Env {
		if e.Name == "CRMQ_SHUTDOWN_TIMEOUT" {
			set = e.Value
		}
	}
	if st := timeout("k8s worker", set); kgrace <= st {
		t.Errorf("k8s worker: terminationGracePeriodSeconds %s <= CRMQ_SHUTDOWN_TIMEOUT %s", kgrace, st)
	}
}

// Every crmq container runs as non-root on a read-only root filesystem,
// without privilege escalation, with resource requests and limits; the API
// has its probes and a Service.
func TestK8sHardeningAndProbes(t *testing.T) {
	objs := readK8s(t)
	for key, o := range objs {
		if o.Kind != "Deployment" && o.Kind != "Job" {
			continue
		}
		ps := o.Spec.Template.Spec
		if o.Kind == "Deployment" && !mapsSubset(o.Spec.Selector.MatchLabels, o.Spec.Template.Metadata.Labels) {
			t.Errorf("%s: selector %v does not match template labels %v", key, o.Spec.Selector.MatchLabels, o.Spec.Template.Metadata.Labels)
		}
		for _, c := range slices.Concat(ps.Containers, ps.InitContainers) {
			where := key + " container " + c.Name
			if !isTrue(c.SecurityContext.RunAsNonRoot) && !isTrue(ps.SecurityContext.RunAsNonRoot) {
				t.Errorf("%s: runAsNonRoot not set", where)
			}
			if !isTrue(c.SecurityContext.ReadOnlyRootFilesystem) {
				t.Errorf("%s: readOnlyRootFilesystem not true", where)
			}
			if c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation not false", where)
			}
			for _, r := range []string{"cpu", "memory"} {
				if c.Resources.Requests[r] == "" {
					t.Errorf("%s: no %s request", where, r)
				}
			}
			if c.Resources.Limits["memory"] == "" {
				t.Errorf("%s: no memory limit", where)
			}
		}
	}

	api, ok := objs["Deployment/crmq-api"]
	if !ok {
		t.Fatal("k8s: no Deployment crmq-api")
	}
	if api.Spec.Replicas == nil || *api.Spec.Replicas != 2 {
		t.Errorf("crmq-api: want replicas 2")
	}
	c := api.Spec.Template.Spec.Containers[0]
	port := ""
	for _, p := range c.Ports {
		if p.ContainerPort == 8080 {
			port = p.Name
		}
	}
	if port == "" {
		t.Error("crmq-api: no containerPort 8080")
	}
	for _, pr := range []struct {
		name string
		p    *probe
		path string
	}{{"readinessProbe", c.ReadinessProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}} {
		if pr.p == nil || pr.p.HTTPGet == nil || pr.p.HTTPGet.Path != pr.path || (pr.p.HTTPGet.Port != port && pr.p.HTTPGet.Port != "8080") {
			t.Errorf("crmq-api: want %s httpGet %s on port 8080", pr.name, pr.path)
		}
	}

	svc, ok := objs["Service/crmq-api"]
	if !ok {
		t.Fatal("k8s: no Service crmq-api")
	}
	sel, _ := svc.raw["spec"].(map[string]any)["selector"].(map[string]any)
	labels := map[string]string{}
	for k, v := range sel {
		labels[k], _ = v.(string)
	}
	if len(labels) == 0 || !mapsSubset(labels, api.Spec.Template.Metadata.Labels) {
		t.Errorf("Service crmq-api: selector %v does not select the api pods %v", labels, api.Spec.Template.Metadata.Labels)
	}
	if len(svc.Spec.Ports) == 0 || (svc.Spec.Ports[0].TargetPort != port && svc.Spec.Ports[0].TargetPort != "8080") {
		t.Errorf("Service crmq-api: targetPort must be the api's port 8080")
	}
}

func isTrue(b *bool) bool { return b != nil && *b }

func mapsSubset(sub, super map[string]string) bool {
	if len(sub) == 0 {
		return false
	}
	for k, v := range sub {
		if super[k] != v {
			return false
		}
	}
	return true
}
