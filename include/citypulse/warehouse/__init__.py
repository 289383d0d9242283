"""The PostgreSQL warehouse.

- `connection`  the `warehouse` Airflow connection (or, where tasks run on this machine, an
                embedded PostgreSQL) and transactions on it
- `tables`      DDL: each dataset's table and history, the shared audit tables, under one
                advisory lock
- `sqlfiles`    the SQL of the package's `sql/` folder, with identifiers quoted
- `types`       Protocols for the DB-API connections and cursors the stages take
"""
