"""Load: a validated run into the warehouse in one transaction.

- `batch`       COPY into staging, upsert on the key, history, rejects, audit, watermark
- `copystream`  one COPY fed by all the run's parts through a read-ahead producer thread
"""
