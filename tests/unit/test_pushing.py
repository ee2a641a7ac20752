"""Publishing for serving (kubetfx.pushing), without TensorFlow: allowed roots, version
numbers, atomic publishing under concurrency and kills, and an object store.

The object store is a stand-in: moto's S3 server (``ThreadedMotoServer``) on loopback,
reached through fsspec/s3fs exactly as a real S3 endpoint would be (``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubetfx import pushing
from kubetfx.errors import ConfigError, ParameterError
from kubetfx.pushing import DestinationError, PushError
from kubetfx.settings import PUSH_ROOT_ENV, resolve_push_roots

FILES = {
    "saved_model.pb": b"graph" * 100,
    "fingerprint.pb": b"fp",
    "variables/variables.index": b"index",
    "variables/variables.data-00000-of-00001": os.urandom(256 * 1024),
    "assets/vocab.txt": b"a\nb\n",
}


def make_model(path: Path, tag: bytes = b"") -> Path:
    """A folder shaped like a SavedModel (publishing never parses it)."""
    for rel, data in FILES.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_bytes(data + tag)
    return path


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return make_model(tmp_path / "model")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "serving"
    path.mkdir()
    return path


# ---------------------------------------------------------------------- settings and names


def test_push_roots_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(PUSH_ROOT_ENV, raising=False)
    assert resolve_push_roots() == [str(tmp_path / ".kubetfx" / "serving")]
    monkeypatch.setenv(PUSH_ROOT_ENV, " rel/a , /abs/b/, s3://bucket/prefix/, file:///srv/c,")
    assert resolve_push_roots() == [str(tmp_path / "rel/a"), "/abs/b", "s3://bucket/prefix", "/srv/c"]


@pytest.mark.parametrize("name", ["penguins", "Penguins-2.v1_a", "0"])
def test_plain_model_names_are_accepted(name: str) -> None:
    assert pushing.check_model_name(name) == name


@pytest.mark.parametrize("name", ["", ".hidden", "../up", "a/b", "a b", "-x", "naïve", "a\\b"])
def test_other_model_names_are_refused(name: str) -> None:
    with pytest.raises(ParameterError, match="model_name"):
        pushing.check_model_name(name)


# ---------------------------------------------------------------------- allowed roots


def test_empty_and_relative_destinations_go_under_the_first_root(root: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    assert pushing.resolve_destination("", [str(root), str(other)]) == str(root)
    assert pushing.resolve_destination("team/a", [str(root)]) == str(root / "team/a")
    assert pushing.resolve_destination(str(other / "x"), [str(root), str(other)]) == str(other / "x")
    assert pushing.resolve_destination(f"file://{root}/y", [str(root)]) == str(root / "y")


@pytest.mark.parametrize(
    "destination", ["{root}/../elsewhere", "../elsewhere", "{root}/a/../b", "s3://b/p/../x"]
)
def test_dotdot_is_refused(root: Path, destination: str) -> None:
    with pytest.raises(DestinationError, match=r"contains '\.\.'"):
        pushing.resolve_destination(destination.format(root=root), [str(root), "s3://b/p"])


def test_paths_outside_every_root_are_refused_naming_roots_and_setting(root: Path, tmp_path: Path) -> None:
    second = tmp_path / "second"
    for outside in ["/etc", str(tmp_path / "serving-evil"), str(tmp_path), "s3://bucket/x"]:
        with pytest.raises(DestinationError) as info:
            pushing.resolve_destination(outside, [str(root), str(second)])
        message = str(info.value)
        assert outside in message and str(root) in message and str(second) in message
        assert PUSH_ROOT_ENV in message and "\n" not in message


def test_symlinks_out_of_a_root_are_refused(root: Path, model: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(DestinationError, match="through a symlink"):
        pushing.resolve_destination(str(root / "link" / "sub"), [str(root)])
    with pytest.raises(DestinationError, match="outside the allowed roots"):
        pushing.resolve_destination("link", [str(root)])
    # A model folder that is a symlink (even one pointing inside the root) is not followed.
    (root / "penguins").symlink_to(outside)
    with pytest.raises(DestinationError, match="is a symlink"):
        pushing.publish(str(model), "penguins", "", allowed_roots=[str(root)])
    assert list(outside.iterdir()) == []
    # A root that is itself reached through a symlink is fine.
    (tmp_path / "root-link").symlink_to(root)
    assert pushing.resolve_destination("x", [str(tmp_path / "root-link")]) == str(root / "x")


def test_object_store_roots_compare_by_bucket_and_whole_segments(root: Path) -> None:
    roots = ["s3://bucket/prefix", str(root)]
    assert pushing.resolve_destination("s3://bucket/prefix/team/", roots) == "s3://bucket/prefix/team"
    assert pushing.resolve_destination("s3://bucket//prefix", roots) == "s3://bucket/prefix"
    assert pushing.resolve_destination("", ["s3://bucket/prefix"]) == "s3://bucket/prefix"
    assert pushing.resolve_destination("team", ["s3://bucket/prefix"]) == "s3://bucket/prefix/team"
    for outside in ["s3://bucket/prefix-evil", "s3://other/prefix", "gs://bucket/prefix", "s3://bucket"]:
        with pytest.raises(DestinationError, match="outside the allowed roots"):
            pushing.resolve_destination(outside, roots)
    with pytest.raises(DestinationError, match="outside the allowed roots"):
        pushing.resolve_destination(str(root), ["s3://bucket/prefix"])
    with pytest.raises(DestinationError, match="not a scheme://bucket/prefix URI"):
        pushing.resolve_destination("s3://bucket/prefix/x?versionId=1", roots)
    with pytest.raises(ConfigError, match=PUSH_ROOT_ENV):
        pushing.resolve_destination("", ["s3://"])


# ---------------------------------------------------------------------- local publishing


def test_versions_start_at_one_and_follow_the_highest_number(root: Path, model: Path) -> None:
    first = pushing.publish(str(model), "penguins", "", allowed_roots=[str(root)])
    assert (first.version, first.uri, first.destination) == (1, str(root / "penguins/1"), str(root))
    assert first.pushed_at.endswith("Z")
    assert tree(root / "penguins/1") == FILES
    assert (root / "penguins/1/assets").is_dir()
    for name in ["7", "notes", ".9.partial-1-abcdef", "x12"]:
        (root / "penguins" / name).mkdir()
    assert pushing.publish(str(model), "penguins", "", allowed_roots=[str(root)]).version == 8
    assert pushing.list_versions(str(root), "penguins") == [1, 7, 8]
    assert sorted(os.listdir(root / "penguins")) == [".9.partial-1-abcdef", "1", "7", "8", "notes", "x12"]


def test_not_a_saved_model_is_refused(root: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(PushError, match="no saved_model.pb"):
        pushing.publish(str(tmp_path / "empty"), "penguins", "", allowed_roots=[str(root)])
    assert not (root / "penguins").exists() or pushing.list_versions(str(root), "penguins") == []


def test_stale_partial_folders_of_killed_pushes_are_cleared(root: Path, model: Path) -> None:
    (root / "penguins").mkdir()
    old, fresh = root / "penguins/.3.partial-1-aaaaaa", root / "penguins/.4.partial-2-bbbbbb"
    old.mkdir()
    fresh.mkdir()
    day_ago = time.time() - pushing.STALE_PARTIAL_SECONDS - 60
    os.utime(old, (day_ago, day_ago))
    pushing.publish(str(model), "penguins", "", allowed_roots=[str(root)])
    assert not old.exists() and fresh.exists()


@pytest.mark.parametrize("noreplace", [True, False], ids=["renameat2", "fallback"])
def test_a_version_taken_meanwhile_even_by_an_empty_folder_is_never_replaced(
    root: Path, model: Path, monkeypatch: pytest.MonkeyPatch, noreplace: bool
) -> None:
    if not noreplace:
        monkeypatch.setattr(pushing, "_renameat2", lambda: None)
    elif pushing._renameat2() is None:
        pytest.skip("no renameat2 on this platform")

    def someone_takes_version_1(rel: str) -> None:
        if rel == "saved_model.pb":  # the last file: the pusher is about to rename
            (root / "penguins/1").mkdir()

    published = pushing.publish(
        str(model), "penguins", "", allowed_roots=[str(root)], progress=someone_takes_version_1
    )
    assert published.version == 2
    assert list((root / "penguins/1").iterdir()) == []
    assert tree(root / "penguins/2") == FILES
    assert sorted(os.listdir(root / "penguins")) == ["1", "2"]


@pytest.mark.parametrize("noreplace", [True, False], ids=["renameat2", "fallback"])
def test_concurrent_publishes_get_distinct_versions_and_readers_never_see_a_partial_one(
    root: Path, model: Path, monkeypatch: pytest.MonkeyPatch, noreplace: bool
) -> None:
    if not noreplace:
        monkeypatch.setattr(pushing, "_renameat2", lambda: None)
    results: list[int] = []
    errors: list[BaseException] = []
    incomplete: list[str] = []
    done = threading.Event()
    start = threading.Barrier(8)

    def push() -> None:
        try:
            start.wait()
            results.append(pushing.publish(str(model), "penguins", "", allowed_roots=[str(root)]).version)
        except BaseException as err:
            errors.append(err)

    def watch() -> None:  # what a model server polling the folder would see
        while not done.is_set():
            folder = root / "penguins"
            for name in os.listdir(folder) if folder.exists() else []:
                if name.isdigit() and tree(folder / name) != FILES:
                    incomplete.append(name)

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=push) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watcher.join()
    assert errors == []
    assert sorted(results) == list(range(1, 9))
    assert incomplete == []
    assert sorted(os.listdir(root / "penguins"), key=int) == [str(v) for v in range(1, 9)]


PUBLISH_SCRIPT = """
import sys, time
from kubetfx import pushing

def slow(rel):
    print("copied", rel, flush=True)
    time.sleep(float(sys.argv[4]))

print("version", pushing.publish(sys.argv[1], "penguins", sys.argv[2],
      allowed_roots=[sys.argv[3]], progress=slow).version, flush=True)
"""


def start_publish(model: Path, destination: str, root: str, delay: float = 0.0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", PUBLISH_SCRIPT, str(model), destination, root, str(delay)],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_concurrent_processes_get_distinct_versions(root: Path, model: Path) -> None:
    procs = [start_publish(model, "", str(root)) for _ in range(4)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    versions = sorted(
        int(line.split()[1]) for out in outs for line in out.splitlines() if line.startswith("version")
    )
    assert versions == [1, 2, 3, 4]
    assert all(tree(root / "penguins" / str(v)) == FILES for v in versions)


def kill_mid_copy(proc: subprocess.Popen) -> None:
    """SIGKILL a publishing process once it has written its first file."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("copied"), line
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def test_a_publish_killed_mid_copy_leaves_no_version_and_a_rerun_publishes(root: Path, model: Path) -> None:
    pushing.publish(str(model), "penguins", "", allowed_roots=[str(root)])
    kill_mid_copy(start_publish(make_model(model.parent / "v2", b"2"), "", str(root), delay=60))
    names = os.listdir(root / "penguins")
    assert [n for n in names if n.isdigit()] == ["1"]
    assert any(n.startswith(".2.partial-") for n in names)  # hidden from servers: not numeric
    assert tree(root / "penguins/1") == FILES
    again = pushing.publish(str(model.parent / "v2"), "penguins", "", allowed_roots=[str(root)])
    assert again.version == 2
    assert tree(root / "penguins/2") == {k: v + b"2" for k, v in FILES.items()}


def test_republish_copies_an_earlier_version_as_the_next(root: Path, model: Path) -> None:
    pushing.publish(str(model), "penguins", "", allowed_roots=[str(root)])
    pushing.publish(str(make_model(model.parent / "v2", b"2")), "penguins", "", allowed_roots=[str(root)])
    again = pushing.republish("penguins", 1, "", allowed_roots=[str(root)])
    assert again.version == 3 and tree(root / "penguins/3") == FILES
    with pytest.raises(
        PushError, match=r"version 9 of model 'penguins' does not exist at .*versions there: 1, 2, 3"
    ):
        pushing.republish("penguins", 9, "", allowed_roots=[str(root)])


# ---------------------------------------------------------------------- object store (moto stand-in)


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, str]]:
    """A stand-in S3: moto's server on loopback, configured through the usual AWS variables."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ACCESS_KEY_ID": "stand-in",
        "AWS_SECRET_ACCESS_KEY": "stand-in",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        import boto3

        client = boto3.client("s3")
        client.create_bucket(Bucket="models")
        yield {"endpoint": env["AWS_ENDPOINT_URL"], "client": client}
    server.stop()


@pytest.fixture
def s3_root(s3, request: pytest.FixtureRequest) -> str:
    return f"s3://models/{request.node.name.split('[')[0][-40:]}"


def keys(s3: dict, prefix: str) -> dict[str, bytes]:
    client = s3["client"]
    listed = client.list_objects_v2(Bucket="models", Prefix=prefix + "/").get("Contents", [])
    return {
        o["Key"][len(prefix) + 1 :]: client.get_object(Bucket="models", Key=o["Key"])["Body"].read()
        for o in listed
    }


def test_object_store_publish_uploads_saved_model_pb_last(s3, s3_root: str, model: Path) -> None:
    prefix = s3_root[len("s3://models/") :]
    seen_before_signal: list[set[str]] = []

    def check(rel: str) -> None:
        present = set(keys(s3, f"{prefix}/penguins/1"))
        if rel != "saved_model.pb":
            assert "saved_model.pb" not in present  # not servable while files are missing
            seen_before_signal.append(present)

    published = pushing.publish(str(model), "penguins", "", allowed_roots=[s3_root], progress=check)
    assert (published.version, published.uri) == (1, f"{s3_root}/penguins/1")
    assert seen_before_signal[-1] == set(FILES) - {"saved_model.pb"}
    assert keys(s3, f"{prefix}/penguins/1") == FILES
    second = pushing.publish(str(model), "penguins", "team/..x", allowed_roots=[s3_root])
    assert second.uri == f"{s3_root}/team/..x/penguins/1"
    assert pushing.publish(str(model), "penguins", "", allowed_roots=[s3_root]).version == 2
    assert pushing.list_versions(s3_root, "penguins") == [1, 2]


def test_object_store_concurrent_publishes_claim_distinct_versions(s3, s3_root: str, model: Path) -> None:
    results: list[int] = []
    start = threading.Barrier(4)

    def push() -> None:
        start.wait()
        results.append(pushing.publish(str(model), "penguins", "", allowed_roots=[s3_root]).version)

    threads = [threading.Thread(target=push) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [1, 2, 3, 4]
    prefix = s3_root[len("s3://models/") :]
    assert all(keys(s3, f"{prefix}/penguins/{v}") == FILES for v in results)


def test_object_store_kill_mid_upload_leaves_nothing_servable_and_republish(
    s3, s3_root: str, model: Path
) -> None:
    prefix = s3_root[len("s3://models/") :]
    pushing.publish(str(model), "penguins", "", allowed_roots=[s3_root])
    kill_mid_copy(start_publish(make_model(model.parent / "v2", b"2"), "", s3_root, delay=60))
    partial = keys(s3, f"{prefix}/penguins/2")
    assert partial and "saved_model.pb" not in partial  # a server skips it: nothing to load
    again = pushing.publish(str(model.parent / "v2"), "penguins", "", allowed_roots=[s3_root])
    assert again.version == 3  # the killed push's number is never reused
    assert keys(s3, f"{prefix}/penguins/3") == {k: v + b"2" for k, v in FILES.items()}
    rolled = pushing.republish("penguins", 1, "", allowed_roots=[s3_root])
    assert rolled.version == 4 and keys(s3, f"{prefix}/penguins/4") == FILES
    with pytest.raises(PushError, match="no saved_model.pb"):
        pushing.republish("penguins", 2, "", allowed_roots=[s3_root])
