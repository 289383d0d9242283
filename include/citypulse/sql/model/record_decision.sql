UPDATE {schema}.model_runs SET decision = %(decision)s, evidence = %(evidence)s WHERE id = %(id)s;
