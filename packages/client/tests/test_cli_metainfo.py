"""`torrio create / info / magnet / verify`, run in-process through main() and once as a process."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from torrio.client import _cli
from torrio.metainfo import Magnet, Torrent
from torrio.testing import make_random_tree

COMMANDS = ("create", "info", "magnet", "verify")


@pytest.fixture(autouse=True)
def _only_metainfo_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    # Sibling commands are developed in the same checkout; these tests only need these four.
    def modules() -> list[ModuleType]:
        return [importlib.import_module(f"torrio.client._cmd_{n}") for n in COMMANDS]

    monkeypatch.setattr(_cli, "_command_modules", modules)


def _tree(tmp_path: Path) -> Path:
    return make_random_tree(tmp_path / "data", {"a.bin": 70_000, "sub/b.bin": 5, "z": 0}, seed=3)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = _cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_create_info_magnet_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _tree(tmp_path)
    out = tmp_path / "d.torrent"
    rc, stdout, _ = _run(
        capsys,
        "create", str(data), "-o", str(out), "--tracker", "http://t/a",
        "--tracker", "udp://u:1,udp://v:2", "--web-seed", "http://ws/", "--private",
        "--comment", "hi", "--source", "SRC", "--piece-size", "16k", "--threads", "2",
    )  # fmt: skip
    assert rc == 0
    t = Torrent.from_file(out)
    assert t.version == "hybrid" and t.piece_length == 16384
    assert t.trackers == (("http://t/a",), ("udp://u:1", "udp://v:2"))
    assert t.private and t.source == "SRC" and t.comment == "hi" and t.creation_date
    assert t.info_hash.v1 is not None and t.info_hash.v1.hex() in stdout

    rc, stdout, _ = _run(capsys, "info", str(out), "--json")
    doc = json.loads(stdout)
    assert rc == 0
    assert doc["info_hash_v2"] == t.info_hash.v2.hex()  # type: ignore[union-attr]
    assert [f["path"] for f in doc["files"]] == ["data/a.bin", "data/sub/b.bin", "data/z"]
    assert doc["num_pieces"] == t.num_pieces and doc["private"] is True

    rc, stdout, _ = _run(capsys, "info", str(out))
    assert rc == 0 and "data/sub/b.bin" in stdout and t.info_hash.v1.hex() in stdout

    rc, stdout, _ = _run(capsys, "magnet", str(out))
    assert rc == 0
    m = Magnet.parse(stdout.strip())
    assert m.info_hash == t.info_hash and m.name == "data"

    rc, stdout, _ = _run(capsys, "info", stdout.strip(), "--json")
    assert rc == 0 and json.loads(stdout)["info_hash_v1"] == t.info_hash.v1.hex()

    rc, stdout, _ = _run(capsys, "verify", str(out), "--path", str(tmp_path))
    assert rc == 0 and "complete" in stdout

    (data / "sub" / "b.bin").unlink()
    rc, stdout, _ = _run(capsys, "verify", str(out), "--json")  # default path: the torrent's folder
    doc = json.loads(stdout)
    assert rc == 1 and doc["complete"] is False
    assert {f["path"]: f["state"] for f in doc["files"]}["data/sub/b.bin"] == "missing"


@pytest.mark.parametrize("flag", ["--v1", "--v2"])
def test_create_versions(tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str) -> None:
    data = _tree(tmp_path)
    out = tmp_path / "x.torrent"
    assert _run(capsys, "create", str(data), "-o", str(out), flag, "--no-date")[0] == 0
    t = Torrent.from_file(out)
    assert t.version == flag[2:] and t.creation_date is None


def test_create_default_output_and_no_clobber(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert _run(capsys, "create", str(data))[0] == 0
    assert (tmp_path / "data.torrent").exists()
    rc, _, err = _run(capsys, "create", str(data))
    assert rc == 1 and "exists" in err and "Traceback" not in err
    assert _run(capsys, "create", str(data), "--force")[0] == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["info", "nope.torrent"],
        ["info", "magnet:?xt=urn:btih:zz"],
        ["magnet", "nope.torrent"],
        ["verify", "magnet:?xt=urn:btih:" + "0" * 40],
        ["create", "does/not/exist"],
    ],
)
def test_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    rc, _, err = _run(capsys, *argv)
    assert rc == 1
    assert err.count("\n") == 1 and err.startswith("torrio ")


def test_bad_torrent_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.torrent"
    bad.write_bytes(b"d4:infod4:name1:xee")
    rc, _, err = _run(capsys, "info", str(bad))
    assert rc == 1 and "piece length" in err and err.count("\n") == 1


def test_verify_corrupt_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _tree(tmp_path)
    out = tmp_path / "d.torrent"
    _run(capsys, "create", str(data), "-o", str(out), "--v1", "--piece-size", "16384")
    blob = bytearray((data / "a.bin").read_bytes())
    blob[100] ^= 1
    (data / "a.bin").write_bytes(bytes(blob))
    rc, stdout, _ = _run(capsys, "verify", str(out), "--path", str(tmp_path))
    assert rc == 1 and "CORRUPT" in stdout and "INCOMPLETE" in stdout


def test_console_script_smoke(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("torrio")
    if not exe.exists():
        pytest.skip("torrio console script not installed next to this interpreter")
    data = _tree(tmp_path)
    out = tmp_path / "s.torrent"
    r = subprocess.run(
        [str(exe), "create", str(data), "-o", str(out)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [str(exe), "verify", str(out), "--json"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["complete"] is True
