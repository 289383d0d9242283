"""Socrata portals.

- `client`  the one client every task that talks to a portal uses (extract, reconcile):
            `sodapy` under a transport that holds deadlines, retries 429/5xx with backoff,
            keeps the app token to its portal's origin, and pages by row id
- `metadata` a dataset's view metadata (`/api/views/<id>.json`) as typed, frozen objects:
            when its rows last changed, its columns and their cached contents, its row
            identifier (`SocrataClient.metadata()` reads it)
- `profile` the few SoQL questions `citypulse contract init` asks of a dataset, through
            `client` (the answers are a `contracts.scaffold.Profile`)
"""
