UPDATE {schema}.model_runs SET artifact_path = %(path)s WHERE id = %(id)s;
