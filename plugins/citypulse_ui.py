"""CityPulse inside the Airflow UI (Airflow 3 plugin).

Mounts `citypulse.ui.app` in the api-server at `/citypulse` and adds, under Browse, the
city health page, the hotspot map and the city charts, and a Validation tab on every DAG
run (shown for city DAGs; other DAGs' runs say they are not a city's). All behind the
Airflow login.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from citypulse.ui.app import app

# Relative hrefs: the UI resolves them against its own base URL, so they work behind a proxy.
NAV = [
    ("CityPulse health", "citypulse/health", "citypulse_health"),
    ("CityPulse hotspot map", "citypulse/map", "citypulse_map"),
    ("CityPulse charts", "citypulse/charts", "citypulse_charts"),
]


class CityPulsePlugin(AirflowPlugin):
    name = "citypulse"
    fastapi_apps = [{"app": app, "url_prefix": "/citypulse", "name": "CityPulse"}]
    external_views = [
        *(
            {
                "name": name,
                "href": href,
                "destination": "nav",
                "category": "browse",
                "url_route": route,
            }
            for name, href, route in NAV
        ),
        {
            "name": "Validation",
            "href": "citypulse/runs/{DAG_ID}/{RUN_ID}",
            "destination": "dag_run",
            "url_route": "citypulse_validation",
        },
    ]
