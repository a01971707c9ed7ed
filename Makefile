# FleetPipe — `make help` lists every target.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PYTEST_ARGS ?=
FLEETPIPE_CACHE ?= $(HOME)/.cache/fleetpipe
HELM ?= $(FLEETPIPE_CACHE)/bin/helm
IMAGE_TAG ?= 0.1.0

.DEFAULT_GOAL := help

.PHONY: help
help: ## list every target
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

.PHONY: setup
setup: ## install everything: Debian packages, .venv, Kafka jars, Go-built binaries (cached)
	scripts/setup.sh

.PHONY: demo
demo: ## the main job: the whole pipeline locally on real Kafka and PostgreSQL (no Go build)
	scripts/setup.sh demo
	$(BIN)/fleetpipe demo $(DEMO_ARGS)

.PHONY: test
test: setup lint typecheck ## everything CI runs: lint, types and all tests on the real servers
	$(BIN)/pytest $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: ## unit tests only (no servers)
	$(BIN)/pytest -m unit $(PYTEST_ARGS)

.PHONY: test-integration
test-integration: ## integration tests (real Kafka and PostgreSQL)
	$(BIN)/pytest -m integration $(PYTEST_ARGS)

.PHONY: test-e2e
test-e2e: ## end-to-end tests (several services, Kubernetes API, Jaeger)
	$(BIN)/pytest -m e2e $(PYTEST_ARGS)

.PHONY: lint
lint: ## ruff check and format check, and the import contracts (layers, services apart, one Kafka edge)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

.PHONY: format
format: ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: typecheck
typecheck: ## mypy --strict over services, operator, loadtest, the dev tools and the tests
	$(BIN)/mypy services/fleetpipe operator/fleet_operator loadtest/fleetpipe_loadtest dev/fleetpipe_dev tests

.PHONY: proto
proto: ## regenerate services/fleetpipe/pb from protos/
	$(PY) -m fleetpipe_dev.devtools.protogen generate

.PHONY: proto-check
proto-check: ## fail when generated code drifts or v1 breaks the released descriptors
	$(PY) -m fleetpipe_dev.devtools.protogen check-drift
	$(PY) -m fleetpipe_dev.devtools.protogen check-compat

.PHONY: proto-release
proto-release: ## record the current contracts as released (after a release only)
	$(PY) -m fleetpipe_dev.devtools.protogen release

.PHONY: manifests
manifests: ## render k8s/ (CRD, RBAC, operator, dev dependencies, load-test Job) from helm/fleetpipe
	$(PY) -m fleetpipe_dev.devtools.manifests generate

.PHONY: manifests-check
manifests-check: ## fail when k8s/ differs from what the chart renders
	$(PY) -m fleetpipe_dev.devtools.manifests check-drift

.PHONY: crd-schema
crd-schema: ## regenerate the CRD's spec.rules schema from the model detection parses (then make manifests)
	$(PY) -m fleetpipe_dev.devtools.crdschema generate

.PHONY: crd-schema-check
crd-schema-check: ## fail when the CRD's generated schemas differ from the models
	$(PY) -m fleetpipe_dev.devtools.crdschema check

.PHONY: helm-lint
helm-lint: ## helm lint --strict the chart, with its defaults and with every option on
	$(HELM) lint --strict helm/fleetpipe
	$(HELM) lint --strict helm/fleetpipe --set dev.kafka.enabled=true,dev.postgresql.enabled=true,dev.jaeger.enabled=true,pipeline.create=true,loadtest.enabled=true,lakeCompaction.enabled=true

.PHONY: skaffold-check
skaffold-check: ## check skaffold.yaml and its profiles against skaffold's published schema
	$(PY) -m fleetpipe_dev.devtools.skaffold

.PHONY: image
image: setup ## build fleetpipe:$(IMAGE_TAG) (and, with no registry, its base and the dev images)
	FLEETPIPE_IMAGE_TAG=$(IMAGE_TAG) $(BIN)/fleetpipe dev image build

.PHONY: dev-up
dev-up: ## start the local Kafka and PostgreSQL and create the topics
	$(BIN)/fleetpipe dev up

.PHONY: dev-down
dev-down: ## stop what dev-up started
	$(BIN)/fleetpipe dev down

.PHONY: dev-status
dev-status: ## show what dev-up started
	$(BIN)/fleetpipe dev status

.PHONY: kube-up kube-down
kube-up: ## start a local Kubernetes control plane with kwok nodes (writes a kubeconfig)
	$(BIN)/fleetpipe dev kube up
kube-down: ## stop what kube-up started
	$(BIN)/fleetpipe dev kube down

.PHONY: bench-operator
bench-operator: ## seconds from a FleetPipeline 50K → 100K patch to Ready, report in benchmarks/reports/
	$(BIN)/fleetpipe bench operator

.PHONY: bench-baseline
bench-baseline: ## baseline B (core-loop passthrough), report in benchmarks/reports/
	$(BIN)/fleetpipe bench baseline

.PHONY: bench-tracing
bench-tracing: ## ingest, enrichment, detection with tracing off and on, report in benchmarks/reports/
	$(BIN)/fleetpipe bench tracing

.PHONY: bench-pipeline
bench-pipeline: ## whole pipeline: highest sustained rate with zero loss vs B, report in benchmarks/reports/
	$(BIN)/fleetpipe bench pipeline

.PHONY: clean
clean: ## remove build leftovers (not the caches in ~/.cache/fleetpipe)
	rm -rf build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
