UPDATE {schema}.model_runs SET decision = %(decision)s WHERE id = %(id)s;
