"""The Airflow Assets that chain the pipeline's DAGs, each defined once.

Cheap to import (names only): DAG files import this at parse time. An asset event's
`extra` carries the run's as-of date and run id, because asset-triggered runs in Airflow 3
have no logical date of their own.
"""

from airflow.sdk import Asset

#: The raw schema after every landing entity of a run has been loaded.
WAREHOUSE_RAW = Asset(name="crm_warehouse_raw", uri="crm://warehouse/raw")
#: Every dbt model of a run (staging, intermediate, marts, the customer 360 with CLV).
WAREHOUSE_MODELS = Asset(name="crm_warehouse_models", uri="crm://warehouse/models")
#: The read-only copy of the marts that BI tools open (crm/bi_snapshot.py).
BI_SNAPSHOT = Asset(name="crm_bi_snapshot", uri="crm://warehouse/bi_snapshot")
#: The target-customer model registry after a training run (champions may have changed).
TARGET_MODELS = Asset(name="crm_target_models", uri="crm://models/target_customers")
#: Scores and audiences of a scoring run (ml.customer_scores, ml.offer_audiences).
AUDIENCES = Asset(name="crm_audiences", uri="crm://ml/audiences")
#: Audience releases published (files, warehouse, CRM database) and the run report.
PUBLISHED_AUDIENCES = Asset(name="crm_published_audiences", uri="crm://activation/audiences")
