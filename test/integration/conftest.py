"""pytest fixtures for the aas-bundle integration tests (see README.md).

Registries are function-scoped (a fresh, empty registry per test; start-up
takes a fraction of a second).  The TLS CA and the token-signing key are
generated once per session.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.faultproxy import FaultProxy  # noqa: E402
from harness.pki import make_ca, make_signing_key  # noqa: E402
from harness.registry import clean_env, start_registry  # noqa: E402
from harness.skopeo import Skopeo  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BINARY = "build/src/cli/aas-bundle"


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def _failed(request) -> bool:
    rep = getattr(request.node, "rep_call", None)
    return rep is not None and rep.failed


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory):
    """The session's throwaway CA (``.cert_file`` is ca.crt)."""
    return make_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def token_signing_key():
    """The session's RSA key + self-signed cert that token servers sign with."""
    return make_signing_key()


@pytest.fixture
def workdir(tmp_path) -> Path:
    return tmp_path


@pytest.fixture
def registry_factory(workdir, test_ca, token_signing_key, request):
    """``registry_factory(mode, **kwargs) -> Registry``; every registry (and its
    token server) is stopped at teardown, logs are printed when the test failed."""
    started = []

    def factory(mode: str, **kwargs):
        kwargs.setdefault("ca", test_ca)
        kwargs.setdefault("signing_key", token_signing_key)
        reg = start_registry(workdir, mode, **kwargs)
        started.append(reg)
        return reg

    yield factory
    for reg in started:
        reg.stop()
    if _failed(request):
        for reg in started:
            print(f"\n--- {reg.mode} registry {reg.url} log tail ---\n{reg.log_tail(30)}")


@pytest.fixture
def plain_registry(registry_factory):
    """HTTP registry without auth."""
    return registry_factory("plain")


@pytest.fixture
def tls_registry(registry_factory):
    """HTTPS registry (test CA) with htpasswd auth for ``alice``."""
    return registry_factory("tls-basic")


@pytest.fixture
def token_registry(registry_factory):
    """HTTP registry with token auth; ``.token_server`` records the token requests.
    Anonymous access is refused (use registry_factory("token",
    allow_anonymous_pull=True) for anonymous pulls)."""
    return registry_factory("token")


@pytest.fixture
def fault_proxy(request):
    """``fault_proxy(upstream, rules=None) -> FaultProxy``; stopped at teardown."""
    proxies = []

    def factory(upstream, rules=None):
        p = FaultProxy(upstream, rules)
        proxies.append(p)
        return p

    yield factory
    for p in proxies:
        p.stop()
    if _failed(request):
        for p in proxies:
            print(f"\n--- fault proxy {p.url} log ---")
            for e in p.log[-40:]:
                print(f"{e['method']} {e['path']} -> {e['status']} ({e['fault']})")


@pytest.fixture
def skopeo(workdir) -> Skopeo:
    return Skopeo(workdir)


@pytest.fixture(scope="session")
def aas_bundle() -> Path:
    """The aas-bundle binary: $AAS_BUNDLE, else build/src/cli/aas-bundle under the
    repository root.  Skips the test when it is missing."""
    p = Path(os.environ.get("AAS_BUNDLE") or DEFAULT_BINARY)
    if not p.is_absolute():
        p = REPO_ROOT / p
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.skip(f"aas-bundle binary not found at {p} (build it, or set AAS_BUNDLE)")
    return p


@pytest.fixture
def run_aas(aas_bundle, workdir):
    """``run_aas(*args, input=None, timeout=120, env=None, cwd=None)`` runs the binary
    and returns a CompletedProcess with text stdout/stderr (never raises on a
    non-zero exit).  The environment has no proxy variables and HOME points to
    an empty directory in the test's workdir; ``env`` entries are added on top."""
    home = workdir / "home"
    home.mkdir(exist_ok=True)

    def run(*args, input=None, timeout=120, env=None, cwd=None):
        e = clean_env({"HOME": str(home)})
        e.pop("DOCKER_CONFIG", None)
        e.pop("REGISTRY_AUTH_FILE", None)
        if env:
            e.update(env)
        return subprocess.run([str(aas_bundle), *map(str, args)], input=input,
                              capture_output=True, text=True, timeout=timeout, env=e,
                              cwd=str(cwd or workdir))

    return run


@pytest.fixture
def key(run_aas, workdir) -> Path:
    """A fresh Ed25519 key pair from ``aas-bundle keygen``: KEY.key and KEY.pub."""
    p = run_aas("keygen", "--out", workdir / "signer")
    assert p.returncode == 0, p.stderr
    return workdir / "signer"
