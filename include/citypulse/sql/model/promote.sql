UPDATE {schema}.model_runs
SET promoted = true, promoted_at = now(), retired_at = NULL, decision = %(decision)s,
    evidence = %(evidence)s
WHERE id = %(id)s;
