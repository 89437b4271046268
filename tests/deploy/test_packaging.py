"""The deployment files: systemd units (`systemd-analyze verify`), the Dockerfile (built where
a Docker daemon answers; otherwise its commands checked here, offline, in seconds), compose.yaml,
the environment file template and the `sudo conductbot` wrapper.

Without Docker, each Dockerfile instruction is checked against what it needs: the torch pin is
the Makefile's and the one installed; every dependency `pip install -e .` pulls in (the whole
closure, from the installed metadata) is satisfied here and comes as a manylinux or pure wheel
that python:3.11-slim (Debian bookworm, glibc 2.36) installs without a compiler; what COPY
names exists and is not excluded by .dockerignore, and the shipped model is inside it; the
RUN checks (policy check, compile) pass; the user is created before USER and owns the volumes;
ENTRYPOINT, CMD and every command in the deploy files parse with the real CLI; and the
HEALTHCHECK command runs against a stand-in /healthz (200 healthy, 503 and no answer not).
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from bot.cli import _parser
from bot.config import HEALTH_PORT

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted(p.name for p in DEPLOY.iterdir() if p.suffix in (".service", ".timer"))
#: python:3.11-slim is Debian bookworm: glibc 2.36.
SLIM_GLIBC = (2, 36)


# -- systemd -----------------------------------------------------------------------------------


def unit(name: str) -> dict[str, list[str]]:
    """A unit file's keys (section.Key) and every value given, in order."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in (DEPLOY / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key}", []).append(value)
    return out


def one(values: dict[str, list[str]], key: str) -> str:
    [value] = values[key]
    return value


def _verifiable_copies(folder: Path, units: list[str]) -> list[Path]:
    """Copies with the two paths that exist only on a server pointed at this checkout (verify
    insists that ExecStart's program exists); everything else as shipped."""
    folder.mkdir()
    copies = []
    for name in units:
        text = (DEPLOY / name).read_text()
        text = text.replace("/opt/conductbot/.venv/bin/python", sys.executable)
        text = text.replace("WorkingDirectory=/opt/conductbot", f"WorkingDirectory={ROOT}")
        (folder / name).write_text(text)
        copies.append(folder / name)
    return copies


def _verify(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", "verify", "--man=no", *map(str, paths)],
                          capture_output=True, text=True, timeout=120, cwd=paths[0].parent)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed here")
def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    assert {"conductbot.service", "conductbot-retention.service", "conductbot-retention.timer",
            "conductbot-backup.service", "conductbot-backup.timer"} <= set(UNITS)
    result = _verify(_verifiable_copies(tmp_path / "units", UNITS))
    # Strict: a warning (an unknown key, a bad value it ignores) fails as an error does.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    # The same check sees a mistake: a misspelt key in an otherwise identical copy.
    broken = tmp_path / "broken"
    [copy] = _verifiable_copies(broken, ["conductbot.service"])
    copy.write_text(copy.read_text().replace("PrivateTmp=", "PrivatTmp="))
    result = _verify([copy])
    assert "Unknown key 'PrivatTmp'" in result.stdout + result.stderr


def test_the_service_runs_the_bot_as_the_deployment_needs() -> None:
    service = unit("conductbot.service")
    assert one(service, "Service.Type") in ("simple", "exec")
    assert shlex.split(one(service, "Service.ExecStart")) == [
        "/opt/conductbot/.venv/bin/python", "bot.py", "run"]
    assert one(service, "Service.WorkingDirectory") == "/opt/conductbot"
    assert one(service, "Service.EnvironmentFile") == "/etc/conductbot/env"
    assert one(service, "Service.User") == "conductbot"
    assert one(service, "Service.Restart") == "on-failure"
    assert one(service, "Service.KillSignal") == "SIGTERM"
    # The load test gives a stopping bot 30 s; the unit gives it more, not less.
    assert int(one(service, "Service.TimeoutStopSec")) >= 30
    assert one(service, "Service.ExecReload") == "/bin/kill -HUP $MAINPID"
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome"):
        assert one(service, f"Service.{key}") == "true"
    assert one(service, "Service.ProtectSystem") == "strict"
    assert one(service, "Install.WantedBy") == "multi-user.target"


@pytest.mark.parametrize("name", [n for n in UNITS if n.endswith(".service")])
def test_every_unit_can_write_where_its_command_writes(name: str) -> None:
    service = unit(name)
    writable = [Path(p) for v in service["Service.ReadWritePaths"] for p in v.split()]
    env = dict(v.partition("=")[::2] for v in service["Service.Environment"])
    db = Path(env["CONDUCTBOT_DB"])
    assert db.parent in writable
    assert Path(env["MPLCONFIGDIR"]).is_relative_to(
        Path("/var/cache") / one(service, "Service.CacheDirectory"))
    assert Path("/var/lib") / one(service, "Service.StateDirectory") == db.parent
    argv = shlex.split(one(service, "Service.ExecStart"))
    if "--out" in argv:
        assert Path(argv[argv.index("--out") + 1]) in writable


def test_the_timers_run_daily_and_catch_up_retention_before_the_backup() -> None:
    times = {}
    for name in ("conductbot-retention.timer", "conductbot-backup.timer"):
        timer = unit(name)
        assert (DEPLOY / name.replace(".timer", ".service")).is_file()
        assert one(timer, "Timer.Persistent") == "true"
        calendar = one(timer, "Timer.OnCalendar")
        assert re.fullmatch(r"\*-\*-\* \d\d:\d\d:00", calendar), calendar
        times[name] = calendar.split()[1]
        assert one(timer, "Install.WantedBy") == "timers.target"
        assert one(unit(name.replace(".timer", ".service")), "Service.Type") == "oneshot"
    assert times["conductbot-retention.timer"] < times["conductbot-backup.timer"]


# -- the Dockerfile ----------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        if raw.lstrip().startswith("#") and not current:
            continue
        current += raw.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.strip():
            word, _, rest = current.strip().partition(" ")
            lines.append((word.upper(), " ".join(rest.split())))
        current = ""
    return lines


def instructions(word: str) -> list[str]:
    return [args for w, args in dockerfile() if w == word]


def run_commands() -> list[list[str]]:
    """Each command of each RUN, split on &&."""
    return [shlex.split(part) for args in instructions("RUN") for part in args.split("&&")]


def docker_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in instructions("ENV"):
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def test_the_image_is_python_3_11_slim_with_cpu_torch_pinned_as_the_makefile_pins_it() -> None:
    [base] = instructions("FROM")
    assert base == "python:3.11-slim"
    [torch_install] = [c for c in run_commands() if any(a.startswith("torch") for a in c)]
    assert torch_install[:2] == ["pip", "install"]
    assert torch_install[torch_install.index("--index-url") + 1] == \
        "https://download.pytorch.org/whl/cpu"
    pin = next(a for a in torch_install if a.startswith("torch=="))
    makefile_pin = re.search(r"pip install --quiet (torch==\S+)",
                             (ROOT / "Makefile").read_text())
    assert makefile_pin is not None and pin == makefile_pin.group(1)
    assert Version(metadata.version("torch")).base_version == pin.split("==")[1]
    assert Requirement(_project_requirements()["torch"]).specifier.contains(pin.split("==")[1])
    # torch before the project, so the project's install finds it and pulls no CUDA build.
    commands = [" ".join(c) for c in run_commands()]
    project = next(i for i, c in enumerate(commands) if c.startswith("pip install -e ."))
    assert commands.index(" ".join(torch_install)) < project


def _project_requirements() -> dict[str, str]:
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {canonicalize_name(Requirement(d).name): d for d in deps}


def _closure() -> Iterator[tuple[str, metadata.Distribution]]:
    """Every distribution the project's runtime dependencies pull in, as installed here."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in _project_requirements().values()]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        dist = metadata.distribution(name)
        assert req.specifier.contains(dist.version, prereleases=True), \
            f"{name} {dist.version} does not satisfy {req}: the image would resolve otherwise"
        yield name, dist
        for sub in dist.requires or ():
            sub_req = Requirement(sub)
            if sub_req.marker is None or sub_req.marker.evaluate({"extra": ""}):
                todo.append(sub_req)


def test_every_dependency_installs_from_a_wheel_the_slim_image_takes_without_a_compiler(
        ) -> None:
    checked = 0
    for name, dist in _closure():
        wheel = dist.read_text("WHEEL")
        assert wheel is not None, f"{name} was not installed from a wheel"
        tags = [line.split(":", 1)[1].strip() for line in wheel.splitlines()
                if line.startswith("Tag:")]
        for tag in tags:
            platform = tag.split("-")[2]
            if platform == "any":
                continue
            found = re.match(r"manylinux_(\d+)_(\d+)_x86_64$", platform) or \
                re.match(r"manylinux(2014|2010|1)_x86_64$", platform)
            assert found, f"{name}: built here for {platform}; the slim image has no compiler"
            if found.re.groups == 2:
                assert (int(found.group(1)), int(found.group(2))) <= SLIM_GLIBC, (name, tag)
        checked += 1
    assert checked > 20  # torch, transformers, aiohttp, ... and theirs


def test_what_the_image_copies_exists_and_holds_the_model_and_policies() -> None:
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    copied: list[Path] = []
    for args in instructions("COPY"):
        *sources, _ = shlex.split(args)
        for source in sources:
            assert not source.startswith("--"), "COPY --from/--chown is not expected here"
            path = ROOT / source
            assert path.exists(), f"COPY {source}: not in the repository"
            assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source
            copied.append(path)
    for needed in ("pyproject.toml", "README.md", "bot.py", "bot/scoring/model/model.safetensors",
                   "bot/scoring/model/model.json", "bot/scoring/model/tokenizer.json",
                   "policies/default.toml", "adapters/runner.py"):
        assert any((ROOT / needed).is_relative_to(p) for p in copied), needed
    for never in (".venv", ".git", "data", "*.sqlite3", "conductbot.env"):
        assert never in ignored


def test_the_image_runs_as_its_own_user_with_the_database_on_a_volume() -> None:
    order = [w for w, _ in dockerfile()]
    [user] = instructions("USER")
    assert user not in ("root", "0")
    creating = next(i for i, (w, a) in enumerate(dockerfile()) if w == "RUN" and "useradd" in a)
    assert creating < order.index("USER")
    useradd = next(c for c in run_commands() if c[0] == "useradd")
    assert useradd[-1] == user and "--system" in useradd
    [volumes] = instructions("VOLUME")
    volume_paths = json.loads(volumes)
    assert str(Path(docker_env()["CONDUCTBOT_DB"]).parent) in volume_paths
    install = next(c for c in run_commands() if c[:2] == ["install", "-d"])
    assert install[install.index("-o") + 1] == user
    assert set(volume_paths) <= set(install)
    [signal] = instructions("STOPSIGNAL")
    assert signal == "SIGTERM"
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        assert docker_env()[key] == "1"


def test_the_images_build_time_checks_pass_here() -> None:
    """The RUN steps after the installs, run as the Dockerfile runs them (in /app = the
    repository); the model check is left to a real build (it loads the model)."""
    for command in run_commands():
        if command[:3] == ["python", "-m", "compileall"]:
            for folder in command[4:]:
                for path in (ROOT / folder).rglob("*.py"):
                    compile(path.read_text(encoding="utf-8"), str(path), "exec")
        elif command[:4] == ["python", "bot.py", "policy", "check"]:
            result = subprocess.run(f"{shlex.quote(sys.executable)} bot.py policy check "
                                    f"{' '.join(command[4:])}", shell=True, cwd=ROOT,
                                    capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stdout + result.stderr
            assert result.stdout.count(": OK (version") == len(list(
                (ROOT / "policies").glob("*.toml")))


def _deploy_commands() -> list[tuple[str, list[str]]]:
    """Every conductbot command line the deploy files run, as (where, argv)."""
    found: list[tuple[str, list[str]]] = []
    for name in UNITS:
        values = unit(name)
        for key in ("Service.ExecStart",):
            for line in values.get(key, []):
                argv = shlex.split(line)
                found.append((name, argv[argv.index("bot.py") + 1:]))
    [entry] = instructions("ENTRYPOINT")
    [cmd] = instructions("CMD")
    assert json.loads(entry) == ["conductbot"]
    found.append(("Dockerfile CMD", json.loads(cmd)))
    for command in run_commands():
        if command[:2] == ["python", "bot.py"]:
            end = command.index(">") if ">" in command else len(command)  # a redirection
            found.append(("Dockerfile RUN", command[2:end]))
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    for service_name, service in compose["services"].items():
        found.append((f"compose.yaml {service_name}", service["command"]))
    return found


def test_every_command_the_deploy_files_run_parses_with_the_real_command_line() -> None:
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["conductbot"] == "bot.cli:main"
    commands = _deploy_commands()
    assert {argv[0] for _, argv in commands} >= {"run", "retention", "backup", "policy", "score"}
    for where, argv in commands:
        try:
            _parser().parse_args(argv)
        except SystemExit:  # pragma: no cover - the failure this test looks for
            pytest.fail(f"{where}: {shlex.join(argv)} does not parse")


@pytest.fixture
def healthz() -> Iterator[tuple[int, list[int]]]:
    """A stand-in /healthz on 127.0.0.1, in a thread, answering the status at the head of the
    list."""
    from aiohttp import web

    statuses = [200]
    bound: list[int] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        async def handler(request: web.Request) -> web.Response:
            return web.json_response({"ok": statuses[0] == 200}, status=statuses[0])

        app = web.Application()
        app.router.add_get("/healthz", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        bound.append(runner.addresses[0][1])
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),))
    thread.start()
    try:
        while not bound:
            thread.join(0.01)
        yield bound[0], statuses
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_health_check_passes_on_200_and_fails_on_503_or_no_answer(
        healthz: tuple[int, list[int]]) -> None:
    port, statuses = healthz
    [check] = instructions("HEALTHCHECK")
    argv = json.loads(check[check.index("CMD") + 3:].strip())
    assert argv[:2] == ["python", "-c"]
    assert f"'{HEALTH_PORT}'" in argv[2]  # the bot's own default port
    assert "/healthz" in (ROOT / "adapters" / "health.py").read_text()

    def run(env_port: int) -> int:
        env = {**os.environ, "CONDUCTBOT_HEALTH_PORT": str(env_port),
               "http_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
        return subprocess.run([sys.executable, *argv[1:]], env=env, capture_output=True,
                              timeout=60).returncode

    assert run(port) == 0  # despite a proxy in the environment
    statuses[0] = 503
    assert run(port) != 0
    assert run(_free_port()) != 0


# -- compose.yaml ------------------------------------------------------------------------------


def test_compose_runs_the_bot_with_its_volume_env_file_restart_and_jobs() -> None:
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    bot = services["conductbot"]
    assert bot["build"] == "."
    assert bot["restart"] == "unless-stopped"
    assert bot["env_file"] == "conductbot.env"
    assert bot["stop_signal"] == "SIGTERM"
    assert int(bot["stop_grace_period"].rstrip("s")) == \
        int(one(unit("conductbot.service"), "Service.TimeoutStopSec"))
    assert "healthcheck" not in bot or not bot["healthcheck"].get("disable")
    data_dir = str(Path(docker_env()["CONDUCTBOT_DB"]).parent)
    for name in ("conductbot", "retention", "backup"):
        service = services[name]
        assert f"data:{data_dir}" in service["volumes"]
        assert service["image"] == bot["image"]
        assert service["env_file"] == "conductbot.env"
    for name in ("retention", "backup"):
        assert services[name]["profiles"] == ["jobs"]  # never started by `up`
        assert services[name]["restart"] == "no"
    backup = services["backup"]["command"]
    out = backup[backup.index("--out") + 1]
    assert any(v.startswith("backups:") and out.startswith(v.split(":")[1])
               for v in services["backup"]["volumes"])
    assert set(compose["volumes"]) == {"data", "backups"}


# -- the environment file and the wrapper ------------------------------------------------------

#: Read by the code for tests and proxies only: never in an operator's file.
TEST_ONLY = {"DISCORD_API_BASE", "DISCORD_GATEWAY_URL", "SLACK_API_BASE"}


def test_the_environment_template_names_every_variable_the_code_reads() -> None:
    read: set[str] = set()
    for folder in ("bot", "adapters"):
        for path in (ROOT / folder).rglob("*.py"):
            read |= set(re.findall(r"[\"']((?:CONDUCTBOT|DISCORD|SLACK)_[A-Z0-9_]+)[\"']",
                                   path.read_text(encoding="utf-8")))
    template = (DEPLOY / "env.example").read_text()
    named = set(re.findall(r"^#?((?:CONDUCTBOT|DISCORD|SLACK)_[A-Z0-9_]+)=", template, re.M))
    missing = sorted(read - TEST_ONLY - named)
    assert not missing, f"add these to deploy/env.example (and docs/deploy.md): {missing}"
    assert not sorted(named - read), "deploy/env.example names variables nothing reads"
    result = subprocess.run(["sh", "-c", 'set -a; . "$0"', str(DEPLOY / "env.example")],
                            capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stderr) == (0, "")


def test_the_wrapper_runs_a_command_as_the_service_would(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    db = tmp_path / "var" / "conductbot.sqlite3"
    env_file.write_text((DEPLOY / "env.example").read_text() + f"CONDUCTBOT_DB={db}\n")
    env = {**os.environ, "CONDUCTBOT_HOME": str(ROOT), "CONDUCTBOT_ENV_FILE": str(env_file),
           "CONDUCTBOT_USER": subprocess.run(["id", "-un"], capture_output=True,
                                             text=True).stdout.strip()}
    env.pop("CONDUCTBOT_DB", None)
    result = subprocess.run(["sh", str(DEPLOY / "conductbot.sh"), "members", "import",
                             str(ROOT / "examples" / "register.csv")], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert db.is_file()
    assert oct(db.stat().st_mode & 0o777) == "0o600"  # umask 077: members' data, one reader
    result = subprocess.run(["sh", str(DEPLOY / "conductbot.sh"), "policy", "show"],
                            env={**env, "CONDUCTBOT_ENV_FILE": str(tmp_path / "missing")},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "cannot read" in result.stderr


# -- a real build, where Docker answers --------------------------------------------------------


def _docker_works() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True,
                              timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.timeout(3600)
@pytest.mark.skipif(not _docker_works(), reason="no Docker daemon answers here (docker info)")
def test_the_image_builds_and_runs_as_a_non_root_user() -> None:  # pragma: no cover
    tag = "conductbot:test"
    subprocess.run(["docker", "build", "-t", tag, str(ROOT)], check=True, timeout=3500)
    user = subprocess.run(["docker", "run", "--rm", "--entrypoint", "id", tag, "-u"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert user != "0"
    check = subprocess.run(["docker", "run", "--rm", tag, "policy", "check",
                            "policies/default.toml"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
