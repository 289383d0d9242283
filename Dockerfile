# CityPulse's Airflow image: the official image of the pinned Airflow (tests/test_compose.py
# checks the tag against apache-airflow== in requirements.txt), the product's pinned
# requirements, and the citypulse package installed from this project (`pip install .`).
# Every Airflow component runs it: api-server, scheduler, dag-processor, triggerer and
# workers, on Celery, Kubernetes or a managed Airflow.
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:0 requirements.txt /opt/airflow/citypulse-requirements.txt
RUN pip install --no-cache-dir -r /opt/airflow/citypulse-requirements.txt

# The package: pyproject.toml, README.md and the sources under include/ (SQL, UI pages and
# sample profiles are package data). --no-deps: requirements.txt pinned them above.
COPY --chown=airflow:0 pyproject.toml README.md /opt/airflow/citypulse-src/
COPY --chown=airflow:0 include/ /opt/airflow/citypulse-src/include/
RUN pip install --no-cache-dir --no-deps /opt/airflow/citypulse-src

# The project Airflow reads: DAG files, plugin and the data contracts (config, not code:
# adding a city is adding a YAML file). CityPulse finds the contracts beside the DAGs folder
# (/opt/airflow/include/contracts); CITYPULSE_CONTRACTS_DIR moves them.
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 include/contracts/ /opt/airflow/include/contracts/
