-- The statement-level triggers that keep {days} and {hex_days} (summary/functions.sql): one
-- per kind of write, each with the rows it wrote as a transition table. Created once, with
-- the summaries (CREATE TRIGGER locks the table against writes while it runs).
CREATE TRIGGER {insert_trigger} AFTER INSERT ON {schema}.{table}
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.{insert_function}();
CREATE TRIGGER {update_trigger} AFTER UPDATE ON {schema}.{table}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.{update_function}();
CREATE TRIGGER {delete_trigger} AFTER DELETE ON {schema}.{table}
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.{delete_function}();
CREATE TRIGGER {truncate_trigger} AFTER TRUNCATE ON {schema}.{table}
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.{truncate_function}();
