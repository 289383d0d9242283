"""Validate: every wire value typed, every row checked, rejects quarantined with reasons.

- `typing_rules`  wire strings to typed columns (Arrow first, pandas where Arrow refuses)
- `chunks`        a window read and typed a bounded number of records at a time
- `suite`         the Great Expectations suite built from the contract; `validate_run`
- `outcome`       the typed report of a validation (`ValidationReport`) and its JSON
- `reports`       each validation kept in `citypulse.validation_reports`
"""
