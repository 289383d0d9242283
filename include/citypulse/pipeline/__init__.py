"""One city run, stage by stage. `run` composes them for a window, once, for every caller
(the DAG's tasks, the partition audit's repairs, loaders of generated history):

    extract  ->  validate/  ->  load/          then  reconcile, views

- `windows`     the local wall-clock span a run covers, and its SoQL
- `manifest`    the typed, versioned object one task hands the next (XCom)
- `run_files`   the run's files under the storage root: extract parts, COPY parts, rejects
- `extract`     read a window from the portal into parts, count-verified
- `drift`       the portal's columns against the contract's: added, removed, retyped
- `drift_log`   schema drift recorded once (`schema_changes`), alerted, fatal for a required
                column gone; run by extract before it reads a row
- `validate/`   type wire values (`typing_rules`) chunk by chunk (`chunks`), check them with
                Great Expectations (`suite`), keep every report (`reports`)
- `load/`       COPY + upsert + audit in one transaction (`batch`), fed by one streamed COPY
                (`copystream`)
- `reconcile`   the partition audit: every day's count against the portal, repairs
- `reconcile_checks`  what the audit believes of the portal: the outage floor, disputed days
- `views`       each city's views and the cross-city ones
- `run`         extract -> validate -> load for one window, written once
"""
