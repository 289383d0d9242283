"""Static checks of docker-compose.yaml against the project.

No Docker engine runs on these machines, so the file is read with `yaml.safe_load` (which
resolves the `&anchor`/`<<: *anchor` merges the official Airflow file relies on) and compose's
`${VAR:-default}` interpolation is reproduced here. Values are checked as a fresh clone without
a .env file would see them: the documented dev defaults.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"

AIRFLOW_COMMANDS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-worker": "celery worker",
    "airflow-triggerer": "triggerer",
}
AIRFLOW_SERVICES = (*AIRFLOW_COMMANDS, "airflow-init")
REQUIRED_SERVICES = {"postgres", "redis", "warehouse", *AIRFLOW_SERVICES}
APISERVER_PORT = 8080
# Environment keys a service may set differently from x-airflow-common (and why).
COMMON_ENV_OVERRIDES = {
    # airflow-init must not pip-install at start: it runs before anything else, as root.
    "airflow-init": {"_PIP_ADDITIONAL_REQUIREMENTS"},
}
# The only credentials allowed in the file: documented dev defaults (see its header).
DEV_DEFAULTS = {
    "",
    "airflow",
    "citypulse",
    "citypulse-dev-jwt-secret",
    "citypulse-dev-secret-key",
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|(^|_)KEY$", re.IGNORECASE)
# Long mixed-case alphanumeric runs look like generated tokens or keys, not words.
TOKEN_LIKE = re.compile(r"[A-Za-z0-9+/=_]{20,}")
VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
VAR_BODY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+?])(.*))?", re.DOTALL)


# --- compose interpolation ------------------------------------------------------------------


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Expand `$$`, `$VAR`, `${VAR}`, `${VAR:-x}`, `${VAR-x}`, `${VAR:+x}`, `${VAR:?e}` (nested)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
        elif text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            end = _closing_brace(text, i + 1)
            out.append(_expand(text[i + 2 : end], env))
            i = end + 1
        elif match := VAR_NAME.match(text, i + 1):
            out.append(env.get(match.group(), ""))
            i = match.end()
        else:
            out.append("$")
            i += 1
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 0
    for j in range(start, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    raise ValueError(f"unclosed '${{' in {text!r}")


def _expand(body: str, env: Mapping[str, str]) -> str:
    match = VAR_BODY.fullmatch(body)
    if match is None:
        raise ValueError(f"invalid interpolation '${{{body}}}'")
    name, op, arg = match.groups()
    value = env.get(name)
    if op is None:
        return value or ""
    # With a colon, an empty value counts as unset (compose follows the shell here).
    is_set = value is not None and (value != "" or not op.startswith(":"))
    if op.endswith("-"):
        return value if is_set and value is not None else interpolate(arg, env)
    if op.endswith("+"):
        return interpolate(arg, env) if is_set else ""
    if not is_set or value is None:
        raise KeyError(f"{name} is required: {arg}")
    return value


def resolve(node: Any, env: Mapping[str, str]) -> Any:
    """Interpolate every string value of a parsed compose document (keys stay as written)."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [resolve(item, env) for item in node]
    if isinstance(node, dict):
        return {key: resolve(value, env) for key, value in node.items()}
    return node


def test_interpolate_follows_compose_rules() -> None:
    """The helper must agree with compose, or every other test here checks the wrong values."""
    env = {"SET": "v", "EMPTY": ""}
    assert interpolate("${UNSET:-d}|${EMPTY:-d}|${EMPTY-d}|${SET:-d}", env) == "d|d||v"
    assert interpolate("${UNSET:-a${SET:-b}c}", env) == "avc"
    assert (
        interpolate("$${HOSTNAME} $$(id -u) $SET ${SET:+alt}", env) == "${HOSTNAME} $(id -u) v alt"
    )
    with pytest.raises(KeyError):
        interpolate("${UNSET:?needed}", env)


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """The compose file as parsed: anchors merged, `${...}` still literal."""
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict), "docker-compose.yaml is not a mapping"
    return document


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    """The compose file as a fresh clone without .env sees it (documented defaults)."""
    return resolve(raw, {})


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _command(service: Mapping[str, Any]) -> str:
    command = service.get("command", "")
    return shlex.join(command) if isinstance(command, list) else str(command)


def _mounts(service: Mapping[str, Any]) -> dict[str, str]:
    """Container path -> source (host path or named volume), short and long syntax."""
    mounts: dict[str, str] = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mounts[volume["target"]] = volume.get("source", "")
        else:
            source, target, *_mode = volume.split(":")
            mounts[target] = source
    return mounts


def _published_ports(service: Mapping[str, Any]) -> set[int]:
    """Container ports a service publishes on the host."""
    ports: set[int] = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            ports.add(int(port["target"]))
        else:
            ports.add(int(str(port).split(":")[-1].split("/")[0]))
    return ports


def _depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    """Dependency name -> condition (list syntax means service_started)."""
    depends = service.get("depends_on", {})
    if isinstance(depends, list):
        return dict.fromkeys(depends, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in depends.items()}


def _pinned_airflow_version() -> str:
    text = (ROOT / "requirements.txt").read_text()
    match = re.search(r"^apache-airflow==(\S+)\s*$", text, re.MULTILINE | re.IGNORECASE)
    assert match, "requirements.txt must pin apache-airflow=="
    return match.group(1)


# --- services -------------------------------------------------------------------------------


def test_required_services_exist(services: dict[str, dict[str, Any]]) -> None:
    missing = REQUIRED_SERVICES - services.keys()
    assert not missing, missing


def test_airflow_services_share_the_common_block(compose: dict[str, Any]) -> None:
    """Every Airflow component runs the same image, environment and mounts: a task must see
    the same code, connections and storage root whichever container runs it."""
    common = compose["x-airflow-common"]
    for name in AIRFLOW_SERVICES:
        service = compose["services"][name]
        assert service["image"] == common["image"], name
        assert service["build"] == common["build"], name
        assert _mounts(service) == _mounts(common), name
        allowed = COMMON_ENV_OVERRIDES.get(name, set())
        differing = {
            key
            for key, value in common["environment"].items()
            if service["environment"].get(key) != value
        }
        assert differing <= allowed, f"{name} overrides {differing - allowed}"


def test_every_service_runs_the_image_built_from_the_dockerfile(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    """One image, built from ./Dockerfile by default, for every Airflow service and the
    stand-in: a task runs the same code and packages on whichever worker takes it."""
    names = [*AIRFLOW_SERVICES, *(["soda-standin"] if "soda-standin" in services else [])]
    assert {services[name]["image"] for name in names} == {compose["x-airflow-common"]["image"]}
    for name in names:
        build = services[name].get("build")
        context = build.get("context", ".") if isinstance(build, dict) else build
        assert context == ".", f"{name} does not build ./Dockerfile"
    assert (ROOT / "Dockerfile").is_file()


def test_dockerfile_builds_on_the_pinned_airflow() -> None:
    """The image's Airflow must be the version the DAGs are tested against, and it must
    carry the product's requirements and the project itself."""
    text = (ROOT / "Dockerfile").read_text()
    (base,) = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    repository, _, tag = base.rpartition(":")
    assert repository == "apache/airflow"
    # Official tags look like 3.3.2 or 3.3.2-python3.11; Python as tests and CI run it.
    version, _, python = tag.partition("-")
    assert version == _pinned_airflow_version()
    assert python == f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert re.search(r"^COPY .*requirements\.txt ", text, re.MULTILINE)
    assert re.search(r"^RUN pip install --no-cache-dir -r \S*requirements\.txt$", text, re.M)
    # The package is installed (pip install .), not put on a path; Airflow's folders beside.
    assert re.search(r"^RUN pip install --no-cache-dir --no-deps \S+citypulse-src$", text, re.M)
    for folder in ("dags", "plugins", "include/contracts"):
        assert re.search(rf"^COPY .*{folder}/ /opt/airflow/{folder}/$", text, re.MULTILINE)
    assert "PYTHONPATH" not in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".citypulse", ".env"} <= set(ignored)


def test_executor_is_celery_with_redis_and_postgres(compose: dict[str, Any]) -> None:
    env = compose["x-airflow-common"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert urlsplit(env["AIRFLOW__CELERY__BROKER_URL"]).hostname == "redis"
    assert urlsplit(env["AIRFLOW__CELERY__RESULT_BACKEND"]).hostname == "postgres"
    assert urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).hostname == "postgres"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false"


def test_execution_api_url_targets_the_apiserver(compose: dict[str, Any]) -> None:
    """Workers run tasks through the Task Execution API: a wrong host or port fails every task."""
    url = urlsplit(
        compose["x-airflow-common"]["environment"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    )
    assert url.hostname == "airflow-apiserver"
    assert url.hostname in compose["services"]
    assert url.port == APISERVER_PORT
    assert url.path.rstrip("/") == "/execution"


def test_airflow_commands(services: dict[str, dict[str, Any]]) -> None:
    for name, command in AIRFLOW_COMMANDS.items():
        assert _command(services[name]) == command, name


# --- mounts ---------------------------------------------------------------------------------


def test_project_folders_mounted_where_airflow_and_pythonpath_look(compose: dict[str, Any]) -> None:
    common = compose["x-airflow-common"]
    mounts = _mounts(common)
    expected = {
        "dags": "/opt/airflow/dags",
        "include": "/opt/airflow/include",
        "plugins": "/opt/airflow/plugins",
    }
    for folder, target in expected.items():
        assert PurePosixPath(mounts.get(target, "")) == PurePosixPath(".", folder), target
        # A missing host folder would be created empty (root-owned) by Docker: no DAGs, no code.
        assert (ROOT / folder).is_dir(), f"{folder}/ is missing from the repository"
    env = common["environment"]
    # The image's AIRFLOW_HOME is /opt/airflow, so dags_folder defaults to /opt/airflow/dags.
    assert env.get("AIRFLOW__CORE__DAGS_FOLDER", expected["dags"]) == expected["dags"]
    assert expected["include"] in env["PYTHONPATH"].split(":")
    # CityPulse finds the contracts in include/contracts beside the DAGs folder.
    assert PurePosixPath(expected["dags"]).parent / "include" == PurePosixPath(expected["include"])


def test_every_airflow_service_shares_one_storage_root(raw: dict[str, Any]) -> None:
    """Tasks hand each other files through CITYPULSE_STORAGE_URL, possibly across workers:
    every Airflow service names the same root; by default a folder on one named volume that
    every one of them mounts, else whatever .env sets (S3, MinIO...) for all alike."""
    for env, expected in (
        ({}, "file:///opt/airflow/storage"),
        ({"CITYPULSE_STORAGE_URL": "s3://citypulse_s3@runs/prod"}, "s3://citypulse_s3@runs/prod"),
    ):
        compose = resolve(raw, env)
        for name in AIRFLOW_SERVICES:
            environment = compose["services"][name]["environment"]
            assert environment["CITYPULSE_STORAGE_URL"] == expected, name
    compose = resolve(raw, {})
    folder = urlsplit(compose["x-airflow-common"]["environment"]["CITYPULSE_STORAGE_URL"]).path
    for name in AIRFLOW_SERVICES:
        source = _mounts(compose["services"][name]).get(folder)
        assert source, f"{name} does not mount {folder}"
        assert source in (compose.get("volumes") or {}), f"{source} is not a named volume"
    # airflow-init hands the fresh volume to the Airflow user.
    assert "storage}" in _command(compose["services"]["airflow-init"])


# --- wiring ---------------------------------------------------------------------------------


def test_every_dependency_exists_and_can_start(services: dict[str, dict[str, Any]]) -> None:
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services.items():
        for dependency, condition in _depends_on(service).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert condition in conditions, f"{name}: {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
            # Compose refuses to start a service whose dependency sits behind a profile.
            if not service.get("profiles"):
                assert not services[dependency].get("profiles"), f"{name} -> {dependency}"


def test_airflow_services_wait_for_init(services: dict[str, dict[str, Any]]) -> None:
    for name in AIRFLOW_COMMANDS:
        assert _depends_on(services[name]).get("airflow-init") == "service_completed_successfully"


def test_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name in ("postgres", "redis", "warehouse", "airflow-apiserver"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in ("postgres", "warehouse"):
        assert "pg_isready" in services[name]["healthcheck"]["test"], name
    probe = " ".join(services["airflow-apiserver"]["healthcheck"]["test"])
    assert f"http://localhost:{APISERVER_PORT}/api/v2/version" in probe


def test_only_the_apiserver_publishes_ports(services: dict[str, dict[str, Any]]) -> None:
    """The databases carry dev passwords: nothing but the UI/API is reachable from the host."""
    published = {name: _published_ports(s) for name, s in services.items() if s.get("ports")}
    assert published == {"airflow-apiserver": {APISERVER_PORT}}


def test_init_migrates_and_creates_the_socrata_pool(services: dict[str, dict[str, Any]]) -> None:
    from citypulse.settings import SOCRATA_POOL

    init = services["airflow-init"]
    assert init["environment"].get("_AIRFLOW_DB_MIGRATE") == "true"
    match = re.search(r"airflow pools set (\S+) (\d+) ", _command(init))
    assert match, "airflow-init does not create a pool"
    assert match.group(1) == SOCRATA_POOL
    assert int(match.group(2)) > 0
    # Resource checks and ownership fix-ups as in the official file.
    command = _command(init)
    assert "mem_available" in command
    assert "chown" in command


def test_warehouse_connection_points_at_the_warehouse_service(raw: dict[str, Any]) -> None:
    """The connection and the warehouse's own settings must agree, also with a custom password."""
    raw_value = raw["x-airflow-common"]["environment"]["AIRFLOW_CONN_WAREHOUSE"]
    assert raw_value.startswith("${AIRFLOW_CONN_WAREHOUSE:-"), "must be overridable from .env"
    for env in ({}, {"WAREHOUSE_PASSWORD": "from-dotenv"}):
        resolved = resolve(raw, env)
        url = urlsplit(resolved["x-airflow-common"]["environment"]["AIRFLOW_CONN_WAREHOUSE"])
        warehouse = resolved["services"]["warehouse"]["environment"]
        assert url.scheme in {"postgres", "postgresql"}
        assert url.hostname == "warehouse"
        assert url.port in (None, 5432)
        assert url.username == warehouse["POSTGRES_USER"]
        assert (
            url.password
            == warehouse["POSTGRES_PASSWORD"]
            == env.get("WAREHOUSE_PASSWORD", "citypulse")
        )
        assert url.path.lstrip("/") == warehouse["POSTGRES_DB"]


def test_no_secrets_beyond_documented_dev_defaults(
    raw: dict[str, Any], compose: dict[str, Any]
) -> None:
    for name, service in [("x-airflow-common", raw["x-airflow-common"]), *raw["services"].items()]:
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert interpolate(str(value), {}) in DEV_DEFAULTS, f"{name}: {key}"
    # Credentials embedded in URLs (metadata DB, result backend, connections).
    for name, service in [
        ("x-airflow-common", compose["x-airflow-common"]),
        *compose["services"].items(),
    ]:
        for key, value in (service.get("environment") or {}).items():
            if "://" in str(value):
                assert (urlsplit(str(value)).password or "") in DEV_DEFAULTS, f"{name}: {key}"
    assert compose["x-airflow-common"]["environment"]["SOCRATA_APP_TOKEN"] == ""
    text = COMPOSE_FILE.read_text()
    random_looking = [
        token
        for token in TOKEN_LIKE.findall(text)
        if re.search(r"\d", token) and re.search(r"[a-z]", token) and re.search(r"[A-Z]", token)
    ]
    assert not random_looking, random_looking


def test_env_example_holds_no_secrets() -> None:
    if not ENV_EXAMPLE.exists():
        pytest.skip(".env.example is optional")
    for line in ENV_EXAMPLE.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.lstrip().startswith("#") and SECRET_NAME.search(key.strip()):
            assert value.strip() == "", f".env.example sets {key.strip()}"


def test_standin_only_runs_with_the_demo_profile(services: dict[str, dict[str, Any]]) -> None:
    if "soda-standin" not in services:
        pytest.skip("no stand-in service")
    standin = services["soda-standin"]
    assert standin.get("profiles") == ["demo"]
    argv = shlex.split(_command(standin))
    assert argv[:3] == ["python", "-m", "citypulse_dev.standin.server"]
    assert argv[argv.index("--host") + 1] == "0.0.0.0"  # reachable from the worker containers
    assert (ROOT / "include" / "citypulse_dev" / "standin" / "server.py").is_file()
    assert "/opt/airflow/include" in _mounts(standin)


def test_docker_compose_config_accepts_the_file() -> None:
    """`docker compose config` is client-side; it needs the compose plugin, not an engine."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker CLI not installed")
    if subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode:
        pytest.skip("docker compose plugin not installed")
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "AIRFLOW_UID": str(os.getuid())},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
