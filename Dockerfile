# CityPulse's Airflow image: the official image of the pinned Airflow (tests/test_compose.py
# checks the tag against apache-airflow== in requirements.txt), the product's pinned
# requirements, and the project. Every Airflow component runs it: api-server, scheduler,
# dag-processor, triggerer and workers, on Celery, Kubernetes or a managed Airflow.
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:0 requirements.txt /opt/airflow/citypulse-requirements.txt
RUN pip install --no-cache-dir -r /opt/airflow/citypulse-requirements.txt

COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/

# The citypulse package ships in include/, not installed: tasks and tools import it from there.
ENV PYTHONPATH=/opt/airflow/include
