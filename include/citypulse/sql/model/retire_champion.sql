-- The previous champion steps down; `promoted_at` keeps the record of its reign.
UPDATE {schema}.model_runs SET promoted = false, retired_at = now() WHERE id = %(id)s;
