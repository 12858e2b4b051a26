// Package deploy holds crmq's container and Kubernetes files (Dockerfile,
// compose.yaml, k8s/) and a test that keeps them in step with the Procfile
// and the environment variables crmq reads, without a Docker engine.
package deploy
