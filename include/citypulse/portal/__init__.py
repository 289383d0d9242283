"""Socrata portals.

- `client`  the one client every task that talks to a portal uses (extract, reconcile):
            `sodapy` under a transport that holds deadlines, retries 429/5xx with backoff,
            keeps the app token to its portal, and pages by row id
"""
