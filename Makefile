# Attribution Lakehouse — every command of the README. Programs take ARGS:
#   make generate ARGS='--count 100000 --rate 0'
#   make attribution ARGS='--trigger available-now'
SHELL := /bin/bash
PYTHON ?= python3
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
COMPOSE := docker compose -p attribution-lakehouse -f docker/compose.yaml
ARGS ?=

# spark-submit reads the configuration directory stack/spark_conf.py writes (conf/spark
# plus the cached connector jars; resolved on first use), and runs the venv's Python
# (where the project is installed) on the driver and executors.
export PYSPARK_PYTHON := $(PY)
export PYSPARK_DRIVER_PYTHON := $(PY)
SPARK_SUBMIT = conf_dir=$$($(PY) -m stack.spark_conf) && SPARK_CONF_DIR=$$conf_dir $(VENV)/bin/spark-submit

.PHONY: help venv constraints superset-constraints doctor test test-unit test-spark demo bi stack-up stack-down stack-status images up down \
        generate campaign-feed attribution dims replay verify maintenance rollups attribution-models score-journeys dashboards metabase grafana \
        bench notebook screenshots clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP):
	@echo "creating $(VENV) and installing the pinned dependencies ..."
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q -c constraints.txt pip
	@$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP) ## create .venv with the pinned dependencies

superset-constraints: ## re-resolve Superset's venv (conf/superset/constraints.txt) after editing its requirements.txt
	@rm -rf $(VENV)-superset-resolve && $(PYTHON) -m venv $(VENV)-superset-resolve
	@$(VENV)-superset-resolve/bin/pip install -q -r conf/superset/requirements.txt
	@{ grep '^#' conf/superset/constraints.txt; $(VENV)-superset-resolve/bin/pip freeze --all | grep -v '^pip=\|^setuptools=\|^wheel='; } \
	  > conf/superset/constraints.txt.new && mv conf/superset/constraints.txt.new conf/superset/constraints.txt
	@rm -rf $(VENV)-superset-resolve && echo "conf/superset/constraints.txt: $$(grep -vc '^#' conf/superset/constraints.txt) packages"

constraints: ## re-resolve every Python package (transitive ones too) into constraints.txt, after editing pyproject.toml
	@rm -rf $(VENV)-resolve && $(PYTHON) -m venv $(VENV)-resolve
	@$(VENV)-resolve/bin/pip install -q --upgrade pip && $(VENV)-resolve/bin/pip install -q -e '.[dev,lab]'
	@{ grep '^#' constraints.txt; $(VENV)-resolve/bin/pip freeze --exclude-editable --all | grep -v '^setuptools=\|^wheel='; } \
	  > constraints.txt.new && mv constraints.txt.new constraints.txt && rm -rf $(VENV)-resolve
	@echo "constraints.txt: $$(grep -vc '^#' constraints.txt) packages"

# Two workers (docs/operations.md, "What is verified where"): the stack's scenarios leave
# gaps (JVM starts, commits, waits) that the other worker's tests fill.
TEST_WORKERS ?= 2

test: $(STAMP) ## the whole test suite; starts (and stops) the local stack as needed
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder $(ARGS)

test-unit: $(STAMP) ## unit tests only (no JVM, no services)
	$(PY) -m pytest tests/unit $(ARGS)

test-spark: $(STAMP) ## unit and Spark tests (a local JVM, Iceberg in a temp directory, no services)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder tests/unit tests/spark $(ARGS)

demo: $(STAMP) ## local stack and Superset, 14 days of history, then the pipeline live on the dashboards until Ctrl-C (ARGS: --rate, --duration)
	@$(PY) -m stack up --with superset
	$(PY) -m jobs.demo $(ARGS)

bi: $(STAMP) ## Superset on the local stack with "ROAS & Performance" and "Pipeline Ops" (first start installs it, ~3 min)
	@$(PY) -m stack up --with superset
	$(PY) -m dashboards.apply $(ARGS)

stack-up: $(STAMP) ## start Kafka, SeaweedFS, Iceberg REST and Trino as local processes
	@$(PY) -m stack up

stack-down: $(STAMP) ## stop the local stack
	@$(PY) -m stack down

doctor: $(STAMP) ## does this machine have what the local stack needs (Java, JDK 25, Maven, curl, ports, disk)?
	@$(PY) -m stack doctor

stack-status: $(STAMP) ## each local service with its port, pid and health
	@$(PY) -m stack status

images: $(STAMP) ## build the project's images (Spark, Superset) with podman or docker; a local Debian base where no registry answers
	$(PY) -m stack.images $(ARGS)

up: ## Docker Compose profile (needs a Docker engine)
	$(COMPOSE) up -d --build --wait

down: ## stop the Docker Compose profile
	$(COMPOSE) down

generate: $(STAMP) ## ad traffic generator -> Kafka
	$(PY) -m producers.ad_traffic_generator $(ARGS)

attribution: $(STAMP) ## the streaming job: Kafka -> Bronze + Gold
	$(SPARK_SUBMIT) jobs/attribution_streaming_job.py $(ARGS)

campaign-feed: $(STAMP) ## campaign snapshots (JSON lines) into the landing directory the dims job reads
	$(PY) -m producers.campaign_feed $(ARGS)

dims: $(STAMP) ## SCD2 dimensions (ARGS: --all, --dimension users, --snapshot FILE)
	$(SPARK_SUBMIT) dims/campaign_scd2_job.py $(ARGS)

replay: $(STAMP) ## rebuild Gold from Bronze
	$(SPARK_SUBMIT) jobs/replay_job.py $(ARGS)

reprocess: $(STAMP) ## re-process quarantined (PROCESSING_ERROR) records from Bronze once their cause is fixed; stop the streaming job first (ARGS: --topic, --partition, --offsets FROM:TO)
	$(SPARK_SUBMIT) jobs/reprocess_job.py $(ARGS)

verify: $(STAMP) ## compare replayed Gold with live Gold
	$(SPARK_SUBMIT) jobs/verify_job.py $(ARGS)

maintenance: $(STAMP) ## compaction, delete-file rewrite, snapshot expiry, orphan cleanup
	$(SPARK_SUBMIT) jobs/maintenance_job.py $(ARGS)

rollups: $(STAMP) ## refresh the dashboard rollups from Gold (ARGS: --every 60 keeps refreshing)
	$(SPARK_SUBMIT) jobs/rollup_job.py $(ARGS)

attribution-models: $(STAMP) ## Markov, Shapley and rule-based credits from users' journeys into gold.attribution_models (ARGS: --as-of, --window-days, --dimension, --max-order)
	$(SPARK_SUBMIT) jobs/attribution_models/job.py $(ARGS)

score-journeys: $(STAMP) ## score a journey file with every model, no Spark (ARGS: --journeys FILE --output FILE)
	$(PY) -m jobs.attribution_models score $(ARGS)

dashboards: $(STAMP) ## Trino views; Superset, Metabase and Grafana dashboards where they run
	$(PY) -m dashboards.apply $(ARGS)

metabase: $(STAMP) ## Metabase: first-run setup, the Trino database and "ROAS & Performance" (METABASE_URL)
	$(PY) -m dashboards.metabase_bootstrap $(ARGS)

grafana: $(STAMP) ## Grafana: the Trino data source and "Pipeline Ops" (GRAFANA_URL)
	$(PY) -m dashboards.grafana_bootstrap $(ARGS)

screenshots: $(STAMP) ## PNGs of the Superset dashboards (real pages) and the notebook's charts for the README (docs/img/); after make demo
	$(PY) -m dashboards.screenshots $(ARGS)

notebook: $(STAMP) ## JupyterLab on the path-analysis notebook (local stack; installs jupyterlab once)
	@$(PY) -c "import jupyterlab" 2>/dev/null || $(PY) -m pip install -q -c constraints.txt -e '.[lab]'
	cd dashboards/jupyter && $(PY) -m jupyterlab --ip=127.0.0.1 --port=8888 --no-browser path_analysis.ipynb

bench: $(STAMP) ## benchmarks, printing figures and ratios
	$(PY) -m tests.bench $(ARGS)

clean: ## remove the venv and the local stack's runtime data (not the download cache)
	-@test -x $(PY) && $(PY) -m stack down
	rm -rf $(VENV) .stack .pytest_cache .hypothesis
