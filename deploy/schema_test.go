package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/crmq/crmq/jobs"
)

// scaledObject is KEDA's ScaledObject (keda.sh/v1alpha1) as far as these
// manifests use it, field names as in KEDA's CRD; KEDA's own Go types pull
// in a large dependency tree, so its fields are mirrored here and decoded
// strictly like the Kubernetes kinds.
type scaledObject struct {
	APIVersion string           `json:"apiVersion"`
	Kind       string           `json:"kind"`
	Metadata   map[string]any   `json:"metadata"`
	Spec       scaledObjectSpec `json:"spec"`
}

type scaledObjectSpec struct {
	ScaleTargetRef struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Name       string `json:"name"`
	} `json:"scaleTargetRef"`
	PollingInterval *int32 `json:"pollingInterval,omitempty"`
	CooldownPeriod  *int32 `json:"cooldownPeriod,omitempty"`
	MinReplicaCount *int32 `json:"minReplicaCount,omitempty"`
	MaxReplicaCount *int32 `json:"maxReplicaCount,omitempty"`
	Advanced        *struct {
		HorizontalPodAutoscalerConfig *struct {
			Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
		} `json:"horizontalPodAutoscalerConfig,omitempty"`
	} `json:"advanced,omitempty"`
	Triggers []struct {
		Type     string            `json:"type"`
		Metadata map[string]string `json:"metadata"`
	} `json:"triggers"`
}

// Every manifest decodes strictly into the Kubernetes API's own Go types
// (k8s.io/api): an unknown or misspelt field, or a value of the wrong
// type, fails. It is the offline stand-in for validating against the
// cluster's OpenAPI schemas (kubeconform needs to download them).
func TestK8sManifestsMatchTheAPISchemas(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("k8s", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("k8s/: %v", err)
	}
	seen := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for i := 0; ; i++ {
			var doc map[string]any
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			raw, err := yaml.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			kind := fmt.Sprint(doc["apiVersion"], " ", doc["kind"])
			var into any
			switch kind {
			case "apps/v1 Deployment":
				into = &appsv1.Deployment{}
			case "batch/v1 Job":
				into = &batchv1.Job{}
			case "v1 Service":
				into = &corev1.Service{}
			case "v1 Secret":
				into = &corev1.Secret{}
			case "keda.sh/v1alpha1 ScaledObject":
				into = &scaledObject{}
			default:
				t.Errorf("%s document %d: %s has no schema in this test: add one", f, i, kind)
				continue
			}
			if err := sigsyaml.UnmarshalStrict(raw, into); err != nil {
				t.Errorf("%s document %d (%s): %v", f, i, kind, err)
			}
			seen[kind]++
		}
	}
	for _, k := range []string{"apps/v1 Deployment", "batch/v1 Job", "v1 Service", "keda.sh/v1alpha1 ScaledObject"} {
		if seen[k] == 0 {
			t.Errorf("no %s among the manifests", k)
		}
	}
}

// The strict decoding above fails on a misspelt field: the check itself is
// checked.
func TestStrictDecodingRefusesAnUnknownField(t *testing.T) {
	bad := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n"
	if err := sigsyaml.UnmarshalStrict([]byte(bad), &appsv1.Deployment{}); err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("a misspelt field passed: %v", err)
	}
}

// A stopping worker may drain its longest task: the grace period is longer
// than every task type's timeout, and the KEDA ScaledObject scales the
// worker Deployment.
func TestWorkerDrainsItsLongestTask(t *testing.T) {
	objs := readK8s(t)
	w, ok := objs["Deployment/crmq-worker"]
	if !ok {
		t.Fatal("k8s: no Deployment crmq-worker")
	}
	ps := w.Spec.Template.Spec
	if ps.TerminationGracePeriodSeconds == nil {
		t.Fatal("crmq-worker: no terminationGracePeriodSeconds")
	}
	grace := time.Duration(*ps.TerminationGracePeriodSeconds) * time.Second
	var shutdown time.Duration
	for _, e := range ps.Containers[0].Env {
		if e.Name == "CRMQ_SHUTDOWN_TIMEOUT" {
			shutdown, _ = time.ParseDuration(e.Value)
		}
	}
	for _, s := range jobs.Specs {
		if s.Timeout > shutdown {
			t.Errorf("crmq-worker: CRMQ_SHUTDOWN_TIMEOUT %s is shorter than %s's timeout %s", shutdown, s.Type, s.Timeout)
		}
		if s.Timeout >= grace {
			t.Errorf("crmq-worker: terminationGracePeriodSeconds %s is not above %s's timeout %s", grace, s.Type, s.Timeout)
		}
	}
	so, ok := objs["ScaledObject/crmq-worker"]
	if !ok {
		t.Fatal("k8s: no ScaledObject crmq-worker")
	}
	ref, _ := so.raw["spec"].(map[string]any)["scaleTargetRef"].(map[string]any)
	if ref["kind"] != "Deployment" || ref["name"] != "crmq-worker" {
		t.Errorf("ScaledObject crmq-worker targets %v", ref)
	}
}
