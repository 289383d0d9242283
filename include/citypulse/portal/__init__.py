"""Socrata portals.

- `client`    the one client every task that talks to a portal uses (extract, reconcile):
              retries 429/5xx with backoff, pages by row id, counts, reads view metadata
- `transport` how a query reaches the portal: SODA 2.1 through `sodapy`, or SODA3 (one SoQL
              statement, an app token required), chosen by `api:` / `CITYPULSE_SODA_API`
- `http`      the one transport of every portal session: the app token kept to its portal's
              origin, a deadline per response, a 200 checked to be what was asked
- `metadata`  a dataset's view metadata (`/api/views/<id>.json`) as typed, frozen objects:
              when its rows last changed, its columns and their cached contents, its row
              identifier
- `profile`   the few SoQL questions `citypulse contract init` asks of a dataset, through
              `client` (the answers are a `contracts.scaffold.Profile`)
"""
