"""Secrets never leak: after runs that used them, no password or token is in
any compiled YAML, file under the pipeline root, lineage record, command output, error
message or audit report.

The secrets, each made up for this module so that a match can only be a leak:

* the metadata store's password, once from ``KUBETFX_METADATA_PASSWORD`` (run 1) and once
  inside the URL (run 2, a password with characters that must be percent-encoded there),
  against the real MariaDB server of ``tests/conftest.py``;
* object-store keys (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``): run 1's Pusher publishes
  the model to a stand-in S3 (moto's server on loopback) with them;
* a KFP bearer token (``KUBETFX_KFP_TOKEN`` and ``--existing-token``), for ``kubetfx submit``
  and ``kubetfx schedule list`` against the KFP REST stand-in of ``tests/cluster``;
* wrong passwords and tokens, in the error messages of commands that are refused.

Two pipeline runs in all: the reference pipeline, compiled here with every secret in the
environment, runs once in full and once again with the other password and another epoch
count (the data tasks cached, a new model trained, evaluated and pushed).
"""

import base64
import importlib.util
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from kubetfx.lineage.store import connect

pytestmark = [pytest.mark.mysql, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
KUBETFX = str(Path(sys.executable).with_name("kubetfx"))
TOKEN = "kfp-" + secrets.token_hex(12)
SECRETS = {
    "metadata password (environment)": "Env-" + secrets.token_hex(8) + "-pw",
    "metadata password (URL)": "Url/" + secrets.token_hex(8) + ":pw",
    "object store key id": "AKIA" + secrets.token_hex(8).upper(),
    "object store secret key": secrets.token_urlsafe(30),
    "KFP token": TOKEN,
    "wrong metadata password": "Wrong-" + secrets.token_hex(8),
    "wrong KFP token": "kfp-wrong-" + secrets.token_hex(8),
}


def forms(secret: str) -> set[str]:
    """A secret as it could leak: as is, percent-encoded (as in a URL) and base64-encoded."""
    return {secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode()}


def leaks(text: str) -> list[str]:
    """The secrets (by name) found in ``text``."""
    return [name for name, secret in SECRETS.items() if any(form in text for form in forms(secret))]


def _load_standin() -> Any:
    name = "kubetfx_tests_kfp_standin"  # the name tests/cluster/conftest.py loads it under
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tests/cluster/kfp_standin.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name].KfpStandIn


def s3_client(endpoint: str) -> Any:
    """A client of the stand-in S3, with the secret keys the runs use."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=SECRETS["object store key id"],
        aws_secret_access_key=SECRETS["object store secret key"],
    )


@pytest.fixture(scope="module")
def sweep(mariadb: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Runs, commands and refusals that used every secret; what they printed and left behind."""
    from kubetfx.pipelines.training import training
    from moto.server import ThreadedMotoServer

    folder = tmp_path_factory.mktemp("secrets")
    database = "mlmd_secrets"
    env_user, url_user = "kubetfx_env", "kubetfx_url"
    env_pw, url_pw = SECRETS["metadata password (environment)"], SECRETS["metadata password (URL)"]
    sql = "".join(
        f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{pw}';"
        f"GRANT ALL PRIVILEGES ON {database}.* TO '{user}'@'127.0.0.1';"
        for user, pw in ((env_user, env_pw), (url_user, url_pw))
    )
    root_sql = [mariadb["client"], "-S", mariadb["socket"], "-u", "root", "-e"]
    subprocess.run([*root_sql, f"CREATE DATABASE {database}; {sql} FLUSH PRIVILEGES;"], check=True)

    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3.start()
    host, port = s3.get_host_and_port()
    kfp = _load_standin()(token=TOKEN).__enter__()
    address = f"127.0.0.1:{mariadb['port']}/{database}"
    env = {
        **os.environ,
        "HOME": str(folder / "home"),
        "TMPDIR": str(folder / "tmp"),
        "KUBETFX_WARM_DIR": str(folder / "warm"),  # the warm worker's files, searched too
        "KUBETFX_PIPELINE_ROOT": str(folder / "root"),
        "KUBETFX_PUSH_ROOT": "s3://models/secrets",
        "AWS_ACCESS_KEY_ID": SECRETS["object store key id"],
        "AWS_SECRET_ACCESS_KEY": SECRETS["object store secret key"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
    }
    for name in ("home", "tmp", "warm"):
        (folder / name).mkdir()
    with_env_pw = {
        **env,
        "KUBETFX_METADATA": f"mysql://{env_user}@{address}",
        "KUBETFX_METADATA_PASSWORD": env_pw,
    }
    with_url_pw = {**env, "KUBETFX_METADATA": f"mysql://{url_user}:{quote(url_pw, safe='')}@{address}"}
    with_url_pw.pop("KUBETFX_METADATA_PASSWORD", None)
    outputs: list[tuple[str, subprocess.CompletedProcess]] = []

    def kubetfx(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [KUBETFX, *args], capture_output=True, text=True, env=env, timeout=900, stdin=subprocess.DEVNULL
        )
        outputs.append((" ".join(args), done))
        return done

    try:
        s3_client(env["AWS_ENDPOINT_URL"]).create_bucket(Bucket="models")
        # Compiled with every secret in the environment: none may reach the YAML.
        pipeline = folder / "training.yaml"
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("KUBETFX_METADATA", with_url_pw["KUBETFX_METADATA"])
            for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                mp.setenv(key, env[key])
            mp.setenv("KUBETFX_METADATA_PASSWORD", env_pw)
            mp.setenv("KUBETFX_KFP_TOKEN", TOKEN)
            from kfp import compiler

            compiler.Compiler().compile(training, str(pipeline))
        quick = ["-p", "epochs=5", "-p", "min_accuracy=0", "-p", "max_fairness_gap=1"]
        first = kubetfx("run", str(pipeline), *quick, env=with_env_pw)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        # Another epoch count: the data tasks are cached, a new model is trained, evaluated
        # against the one run 1 pushed and pushed as version 2.
        second = kubetfx("run", str(pipeline), *quick, "-p", "epochs=4", env=with_url_pw)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        for run_env in (with_env_pw, with_url_pw):
            assert kubetfx("runs", env=run_env).returncode == 0
            assert kubetfx("lineage", "pushes", "penguins", env=run_env).returncode == 0
            assert kubetfx("lineage", "model", "penguins:1", env=run_env).returncode == 0
        run_id = next(line.split()[1] for line in first.stdout.splitlines() if line.startswith("Run "))
        assert kubetfx("runs", "show", run_id, env=with_url_pw).returncode == 0
        audit_md = kubetfx("audit", "penguins:1", env=with_env_pw)
        assert audit_md.returncode == 0 and "| decision | BLESSED |" in audit_md.stdout, audit_md.stderr
        audit_html = folder / "audit.html"
        done = kubetfx("audit", "penguins:2", "--format", "html", "-o", str(audit_html), env=with_url_pw)
        assert done.returncode == 0, done.stderr

        # Refused: a wrong password, in the URL and in the environment; a wrong token.
        wrong = SECRETS["wrong metadata password"]
        refusals = [
            kubetfx("runs", "--metadata", f"mysql://{env_user}:{wrong}@{address}", env=env),
            kubetfx("run", str(pipeline), env={**with_env_pw, "KUBETFX_METADATA_PASSWORD": wrong}),
            kubetfx("audit", "penguins:1", env={**with_env_pw, "KUBETFX_METADATA_PASSWORD": wrong}),
            kubetfx(
                "schedule", "list", "--host", kfp.url, "--existing-token", SECRETS["wrong KFP token"], env=env
            ),
        ]
        submitted = kubetfx(
            "submit",
            str(pipeline),
            "--experiment",
            "secrets",
            "--host",
            kfp.url,
            env={**env, "KUBETFX_KFP_TOKEN": TOKEN},
        )
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        listed = kubetfx("schedule", "list", "--host", kfp.url, "--existing-token", TOKEN, env=env)
        assert listed.returncode == 0, listed.stderr
        yield {
            "folder": folder,
            "pipeline": pipeline,
            "outputs": outputs,
            "refusals": refusals,
            "audit": {"md": audit_md.stdout, "html": audit_html.read_text()},
            "urls": (with_env_pw, with_url_pw),
            "mysql": {**mariadb, "database": database},
            "s3": env["AWS_ENDPOINT_URL"],
            "kfp": kfp,
            "first": first,
            "second": second,
        }
    finally:
        subprocess.run([KUBETFX, "worker", "stop"], capture_output=True, env=env)  # if one started
        kfp.__exit__(None, None, None)
        s3.stop()
        subprocess.run([*root_sql, f"DROP DATABASE IF EXISTS {database}"], capture_output=True)
        for user in (env_user, url_user):
            subprocess.run([*root_sql, f"DROP USER IF EXISTS '{user}'@'127.0.0.1'"], capture_output=True)


def test_the_runs_used_the_secrets(sweep: dict[str, Any]) -> None:
    """The sweep means something only if the secrets were really used: lineage in MariaDB
    through both passwords, a model pushed to the object store."""
    first, second = sweep["first"].stdout, sweep["second"].stdout
    assert re.search(r"pusher\s+SUCCEEDED.*pushed=True, version=1", first), first
    assert re.search(r"pusher\s+SUCCEEDED.*pushed=True, version=2", second), second
    for version in (1, 2):
        keys = s3_client(sweep["s3"]).list_objects_v2(Bucket="models", Prefix=f"secrets/penguins/{version}/")
        assert any(k["Key"].endswith("saved_model.pb") for k in keys.get("Contents", []))
    for urls in sweep["urls"]:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("KUBETFX_METADATA_PASSWORD", urls.get("KUBETFX_METADATA_PASSWORD", ""))
            store = connect(urls["KUBETFX_METADATA"])
            assert len(store.mlmd.get_executions()) >= 16
    assert ":***@" in first  # the URL is shown, its password is not


def test_no_secret_in_any_compiled_yaml(sweep: dict[str, Any]) -> None:
    files = [
        sweep["pipeline"],
        *REPO.glob("pipelines/*/pipeline.yaml"),
        *REPO.glob("components/*/component.yaml"),
    ]
    assert len(files) > 8
    for path in files:
        assert leaks(path.read_text()) == [], path
        spec = next(yaml.safe_load_all(path.read_text()))
        names = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
        assert not [n for n in names if any(w in n.lower() for w in ("password", "token", "secret"))], path


CLUSTER_SECRETS = {  # variable -> the Kubernetes Secret every task takes it from
    "KUBETFX_METADATA_PASSWORD": "kubetfx-metadata",
    "AWS_ACCESS_KEY_ID": "kubetfx-object-store",
    "AWS_SECRET_ACCESS_KEY": "kubetfx-object-store",
}


def test_in_a_cluster_the_credentials_come_from_kubernetes_secrets(sweep: dict[str, Any]) -> None:
    """Not parameters, not env values: every task reads the metadata password and the
    object-store keys from Secrets, by name (kfp-kubernetes), in the compiled pipeline."""
    spec, platform = list(yaml.safe_load_all(sweep["pipeline"].read_text()))
    for variable in CLUSTER_SECRETS:
        assert variable not in yaml.safe_dump(spec), variable  # no parameter, no literal env
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    containers = {k for k, v in spec["deploymentSpec"]["executors"].items() if "container" in v}
    for name in containers:
        wired = {
            key["envVar"]: secret["secretName"]
            for secret in executors.get(name, {}).get("secretAsEnv", [])
            for key in secret["keyToEnv"]
        }
        assert wired == CLUSTER_SECRETS, f"{name}: credentials not all taken from Kubernetes Secrets"


def test_no_secret_in_any_file_the_runs_left(sweep: dict[str, Any]) -> None:
    """Outputs, logs, state files and reports under the pipeline root, the audit file, the
    temp folder the tasks used, the warm worker's folder and the home kfp's client writes to."""
    files = [p for p in sweep["folder"].rglob("*") if p.is_file()]
    assert len(files) > 100
    logs = [p for p in files if p.name == "log.txt"]
    assert len(logs) >= 8
    for path in files:
        assert leaks(path.read_bytes().decode("latin-1")) == [], path


def test_no_secret_in_lineage(sweep: dict[str, Any]) -> None:
    """Every artifact, execution and context (names, URIs, properties), and a dump of the database."""
    env_pw = sweep["urls"][0]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUBETFX_METADATA_PASSWORD", env_pw["KUBETFX_METADATA_PASSWORD"])
        store = connect(env_pw["KUBETFX_METADATA"])
        records = [*store.mlmd.get_artifacts(), *store.mlmd.get_executions(), *store.mlmd.get_contexts()]
    assert len(records) > 40
    for record in records:
        assert leaks(str(record)) == [], record
    db = sweep["mysql"]
    dump = subprocess.run(
        [shutil.which("mariadb-dump") or "mysqldump", "-S", db["socket"], "-u", "root", db["database"]],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "system.PipelineRun" in dump.stdout and leaks(dump.stdout) == []


def test_no_secret_in_any_command_output_or_error(sweep: dict[str, Any]) -> None:
    assert len(sweep["outputs"]) >= 15
    for command, done in sweep["outputs"]:
        assert leaks(done.stdout + done.stderr) == [], command


def test_refusals_say_why_without_the_secret(sweep: dict[str, Any]) -> None:
    *wrong_password, wrong_token = sweep["refusals"]
    for done in wrong_password:
        assert done.returncode == 2, done.stdout + done.stderr
        [line] = done.stderr.strip().splitlines()
        assert "refused user 'kubetfx_env' (wrong password?)" in line and "KUBETFX_METADATA_PASSWORD" in line
    assert wrong_token.returncode == 2 and "403 Forbidden" in wrong_token.stderr
    runs = list((sweep["folder"] / "root" / "kubetfx-training").iterdir())
    assert len(runs) == 2, "the refused run started nothing"


def test_the_kfp_server_got_the_token_only_in_the_authorization_header(sweep: dict[str, Any]) -> None:
    requests = sweep["kfp"].requests
    assert requests and any(r.authorization == f"Bearer {TOKEN}" for r in requests)
    for request in requests:
        assert leaks(f"{request.path} {request.query} {request.body}") == [], request.path


def test_the_audit_report_holds_no_secret(sweep: dict[str, Any]) -> None:
    for (fmt, text), version in zip(sweep["audit"].items(), (1, 2), strict=True):
        assert f"s3://models/secrets/penguins/{version}" in text, fmt
        assert leaks(text) == [], fmt
