"""CityPulse's development tooling, kept out of the product package `citypulse`.

- `standin/`        a local SODA stand-in: `soql` parses queries, `server` answers them
- `generator`       realistic records for a contract, from its sample profile
- `profiles`        the sample profile model (`SampleProfile`) and `sample_profile(contract)`
- `samples/`        each dataset's sample profile (`<dag_id>.yaml`): how the generator makes
                    its records; the contracts hold none of it
- `sample_history`  weeks of generated history loaded as audited runs
- `demo`            `make demo` / `citypulse demo start|stop`
"""
