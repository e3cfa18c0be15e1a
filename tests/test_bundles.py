"""Evidence bundles: one tamper test per kind of damage, proofs checked by an independent
RFC 9162 implementation (pymerkle, with rfc8785 for the canonical bytes: no trailseal
code), a January bundle checked against a later checkpoint, and random damage."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymerkle.core import _inclusion_path_layout
from pymerkle.proof import InclusionProof

from conftest import Server, event_lines, run_cli
from trailseal.app import App, Caller
from trailseal.checkpoints import Signer, Verifier
from trailseal.errors import VerificationError
from trailseal.reports import verify_bundle
from trailseal.reports.bundle import MANIFEST, BundleParts, build, parse_tlog_proof

HOST = Caller.host()


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[App, bytes, Path]]:
    """A log of 300 sample events (details included), and one report's bundle over it."""
    data = tmp_path_factory.mktemp("bundles") / "data"
    with App.init(data, origin="test.example/bundles") as app:
        app.entries.append(HOST, event_lines(300, seed=5))
        actor = app.entries.search(HOST, _first()).pop().entry["event"]["actor"]["id"]
        report = app.reports.produce(HOST, "actor-timeline", {"actor": actor})
        assert len(report.cited) >= 1
        yield app, app.reports.bundle(HOST, report), data


def _first():
    from trailseal.app import search_filter  # noqa: PLC0415

    return search_filter(action="record.update", limit=1)


def _files(bundle: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def _changed(bundle: bytes, change: Callable[[dict[str, bytes]], None]) -> bytes:
    files = _files(bundle)
    change(files)
    return _zip(files)


def test_a_bundle_verifies_and_holds_what_it_cites(log: tuple[App, bytes, Path]) -> None:
    app, bundle, _ = log
    found = verify_bundle(bundle, app.verifier)
    files = _files(bundle)
    cited = orjson.loads(files["report.json"])["cited"]
    assert found.entries == len(cited) == len(files["entries.jsonl"].splitlines())
    assert {f"proofs/{i}.tlog-proof" for i in cited} <= set(files)
    assert {"report.html", "report.pdf", "report.csv", "report.json", "checkpoint"} <= set(files)
    assert files["verifier.key"].decode().strip() == str(app.verifier)
    proof = files[f"proofs/{cited[0]}.tlog-proof"].decode()
    assert proof.startswith(f"c2sp.org/tlog-proof@v1\nindex {cited[0]}\n")
    assert proof.split("\n\n", 1)[1] == files["checkpoint"].decode()  # verbatim


def test_the_proofs_verify_with_an_independent_rfc9162_implementation(
    log: tuple[App, bytes, Path],
) -> None:
    _, bundle, _ = log
    files = _files(bundle)
    origin, size, root = files["checkpoint"].decode().split("\n")[:3]
    size_n, root_bytes = int(size), base64.b64decode(root)
    checked = 0
    for line in files["entries.jsonl"].splitlines():
        entry = orjson.loads(line)["entry"]
        leaf = hashlib.sha256(b"\x00" + rfc8785.dumps(entry)).digest()
        index = entry["index"]
        text = files[f"proofs/{index}.tlog-proof"].decode()
        path = [base64.b64decode(h) for h in text.split("\n\n")[0].split("\n")[2:]]
        rule, _ = _inclusion_path_layout(index + 1, size_n)  # pymerkle counts from one
        secure = True  # pymerkle's 0x00/0x01 prefixes: RFC 9162's hashing
        proof = InclusionProof("sha256", secure, size_n, index + 1, rule, [leaf, *path])
        proof.verify(leaf, root_bytes, index=index + 1, size=size_n)
        checked += 1
    assert checked == len(files["entries.jsonl"].splitlines()) > 0
    assert origin == "test.example/bundles"


def _edit_entry(files: dict[str, bytes]) -> None:
    lines = files["entries.jsonl"].splitlines(keepends=True)
    row = orjson.loads(lines[0])
    row["entry"]["event"]["action"] = "record.read"
    lines[0] = orjson.dumps(row) + b"\n"
    files["entries.jsonl"] = b"".join(lines)


def _remove_entry(files: dict[str, bytes]) -> None:
    lines = files["entries.jsonl"].splitlines(keepends=True)
    index = orjson.loads(lines[-1])["entry"]["index"]
    files["entries.jsonl"] = b"".join(lines[:-1])
    del files[f"proofs/{index}.tlog-proof"]


def _add_entry(files: dict[str, bytes]) -> None:
    lines = files["entries.jsonl"].splitlines(keepends=True)
    row = orjson.loads(lines[0])
    row["entry"]["index"] = 299
    files["entries.jsonl"] += orjson.dumps(row) + b"\n"
    files["proofs/299.tlog-proof"] = files[next(n for n in files if n.startswith("proofs/"))]


def _wrong_proof(files: dict[str, bytes]) -> None:
    name = next(n for n in files if n.startswith("proofs/"))
    head, _, note = files[name].decode().partition("\n\n")
    lines = head.split("\n")
    lines[2] = base64.b64encode(b"\x01" * 32).decode()
    files[name] = ("\n".join(lines) + "\n\n" + note).encode()


def _forge_manifest(files: dict[str, bytes]) -> None:
    """Someone without the log's key rewrites the manifest and signs it with their own
    key under the log's name."""
    text = files[MANIFEST].decode().split("\n\n")[0] + "\n"
    files["report.html"] = b"<p>nothing to see</p>"
    digest = hashlib.sha256(files["report.html"]).hexdigest()
    text = "\n".join(
        f"file {digest} report.html" if line.endswith(" report.html") else line
        for line in text.rstrip("\n").split("\n")
    )
    files[MANIFEST] = Signer.generate("test.example/bundles").sign(text + "\n").encode()


DAMAGE = {
    "report file changed": (
        lambda f: f.update({"report.html": f["report.html"] + b" "}),
        "changed-file",
    ),
    "entry changed": (_edit_entry, "changed-entry"),
    "entry removed": (_remove_entry, "files-removed"),
    "entry added": (_add_entry, "files-added"),
    "proof changed": (_wrong_proof, "changed-file"),
    "manifest forged and re-signed": (_forge_manifest, "bad-manifest"),
    "file added": (lambda f: f.update({"notes.txt": b"trust me"}), "files-added"),
    "manifest removed": (lambda f: f.pop(MANIFEST), "files-removed"),
    "checkpoint removed": (lambda f: f.pop("checkpoint"), "files-removed"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_each_kind_of_damage_is_found(log: tuple[App, bytes, Path], damage: str) -> None:
    app, bundle, _ = log
    change, kind = DAMAGE[damage]
    with pytest.raises(VerificationError) as raised:
        verify_bundle(_changed(bundle, change), app.verifier)
    assert raised.value.kind == kind, str(raised.value)


def test_a_wrong_proof_is_found_even_under_a_genuine_manifest(
    log: tuple[App, bytes, Path],
) -> None:
    """An insider holding the log's key can sign any manifest, but not make a proof lead
    to a checkpoint's root: the proofs are checked, not only the hashes of the files."""
    app, bundle, _ = log
    files = _files(bundle)
    entries = files["entries.jsonl"].splitlines(keepends=True)
    proofs = {}
    for line in entries:
        index = orjson.loads(line)["entry"]["index"]
        _, path, _ = parse_tlog_proof(files[f"proofs/{index}.tlog-proof"], "p")
        proofs[index] = path
    first = next(iter(proofs))
    proofs[first] = [bytes(32), *proofs[first][1:]]
    parts = BundleParts(
        "test.example/bundles",
        "x",
        "now host",
        files["checkpoint"].decode(),
        str(app.verifier),
        entries,
        proofs,
        {},
    )
    with pytest.raises(VerificationError) as raised:
        verify_bundle(build(parts, app.ledger.sign_statement), app.verifier)
    assert raised.value.kind == "bad-proof"


def test_not_a_zip_and_a_truncated_bundle_are_refused(log: tuple[App, bytes, Path]) -> None:
    app, bundle, _ = log
    encrypted = bytearray(bundle)  # one flag bit, found by the random-damage test below
    encrypted[bundle.find(b"PK\x01\x02") + 8] ^= 1
    for broken in (b"not a zip at all", bundle[: len(bundle) // 2], b"", bytes(encrypted)):
        with pytest.raises(VerificationError) as raised:
            verify_bundle(broken, app.verifier)
        assert raised.value.kind in ("not-a-bundle", "truncated")


def test_a_bundle_checks_against_a_later_checkpoint(log: tuple[App, bytes, Path]) -> None:
    """January's bundle against June's checkpoint: the consistency proof between them."""
    app, bundle, _ = log
    old_size = int(_files(bundle)["checkpoint"].decode().split("\n")[1])
    app.entries.append(HOST, event_lines(50, seed=6))
    later = app.ledger.checkpoint()
    new_size = int(later.split("\n")[1])
    proof = app.ledger.prove_consistency(old_size, new_size).proof
    found = verify_bundle(bundle, app.verifier, against=later, consistency=proof)
    assert found.against == new_size
    with pytest.raises(VerificationError, match="needs the consistency proof"):
        verify_bundle(bundle, app.verifier, against=later)
    with pytest.raises(VerificationError):
        verify_bundle(bundle, app.verifier, against=later, consistency=[bytes(32)] * len(proof))


def test_verify_bundle_from_the_cli_against_a_later_checkpoint(
    log: tuple[App, bytes, Path], tmp_path: Path
) -> None:
    app, bundle, data = log
    path = tmp_path / "bundle.zip"
    path.write_bytes(bundle)
    old_size = int(_files(bundle)["checkpoint"].decode().split("\n")[1])
    later = tmp_path / "later.note"
    later.write_text(app.ledger.checkpoint())
    new_size = int(later.read_text().split("\n")[1])
    proof = run_cli("prove", "consistency", str(old_size), str(new_size), data=data, check=True)
    (tmp_path / "proof.json").write_bytes(proof.stdout)
    vkey = str(app.verifier)
    ok = run_cli(
        "verify-bundle",
        path,
        "--vkey",
        vkey,
        "--against",
        later,
        "--consistency",
        tmp_path / "proof.json",
    )
    assert ok.returncode == 0, ok.stderr
    assert orjson.loads(ok.stdout)["consistent_with_size"] == new_size
    path.write_bytes(_changed(bundle, _edit_entry))
    damaged = run_cli("verify-bundle", path, "--vkey", vkey)
    assert damaged.returncode == 3
    assert "verification FAILED: changed-entry" in damaged.stderr.decode()


@given(st.integers(min_value=0), st.integers(min_value=1, max_value=255))
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_random_damage_is_caught_or_harmless(
    log: tuple[App, bytes, Path], position: int, flip: int
) -> None:
    app, bundle, _ = log
    damaged = bytearray(bundle)
    damaged[position % len(damaged)] ^= flip
    try:
        found = verify_bundle(bytes(damaged), app.verifier)
    except VerificationError:
        return
    # A flip the zip format ignores (a timestamp, say) changes nothing that is checked.
    assert found.entries == verify_bundle(bundle, app.verifier).entries


def test_a_tenant_export_is_a_bundle_that_verifies_on_its_own(server: Server) -> None:
    """A tenant's export cannot pass verify-export (it needs every entry from 0); as a
    bundle it proves each of its entries."""
    acme_writer = server.client(server.principal("acme-w", "writer", "acme"))
    globex_writer = server.client(server.principal("globex-w", "writer", "globex"))
    for writer, tenant, seed in ((acme_writer, "acme", 1), (globex_writer, "globex", 2)):
        events = [orjson.loads(line) for line in event_lines(20, seed=seed)]
        for event in events:
            event["resource"]["tenant"] = event["actor"]["tenant"] = tenant
            event["id"] = f"{tenant}-{event['id']}"
        assert writer.post("/v1/events", json=events).status_code == 201
    acme = server.client(server.principal("acme-a", "auditor", "acme"))
    answer = acme.get("/v1/export", params={"format": "bundle"})
    assert answer.status_code == 200, answer.text
    vkey = server.client(server.admin).get("/v1/checkpoint").text.split("\n")[0]
    verifier = Verifier.from_string(
        run_cli("pubkey", data=server.data, check=True).stdout.decode().strip()
    )
    found = verify_bundle(answer.content, verifier)
    tenants = {
        orjson.loads(line)["entry"]["event"]["resource"].get("tenant")
        for line in _files(answer.content)["entries.jsonl"].splitlines()
        if "resource" in orjson.loads(line)["entry"]["event"]
    }
    assert found.entries >= 20
    assert tenants == {"acme"}
    assert vkey == found.origin
    some = acme.get("/v1/export", params={"format": "bundle", "q": "action:record.update"})
    assert verify_bundle(some.content, verifier).entries < found.entries


def test_export_bundle_from_the_cli(log: tuple[App, bytes, Path], tmp_path: Path) -> None:
    app, _, data = log
    out = tmp_path / "part.zip"
    run_cli("export", "--bundle", "--query", "outcome:denied", "-o", out, data=data, check=True)
    found = verify_bundle(out.read_bytes(), app.verifier)
    lines = _files(out.read_bytes())["entries.jsonl"].splitlines()
    assert found.entries == len(lines) > 0
    assert {orjson.loads(x)["entry"]["event"]["outcome"]["result"] for x in lines} == {"denied"}
    refused = run_cli("export", "--query", "outcome:denied", data=data)
    assert refused.returncode == 2


def test_verify_bundle_fetches_the_later_state_from_a_service(
    server: Server, tmp_path: Path
) -> None:
    writer = server.client(server.principal("w", "writer"))
    token = server.principal("a", "auditor")
    auditor = server.client(token)
    events = [orjson.loads(line) for line in event_lines(30, seed=8)]
    assert writer.post("/v1/events", json=events[:20]).status_code == 201
    actor = events[0]["actor"]["id"]
    made = auditor.post("/v1/reports/actor-timeline", json={"actor": actor, "format": "bundle"})
    bundle = tmp_path / "b.zip"
    bundle.write_bytes(made.content)
    assert writer.post("/v1/events", json=events[20:]).status_code == 201
    vkey = run_cli("pubkey", data=server.data, check=True).stdout.decode().strip()
    checked = run_cli(
        "verify-bundle",
        bundle,
        "--vkey",
        vkey,
        "--url",
        server.url,
        env={"TRAILSEAL_TOKEN": token},
    )
    assert checked.returncode == 0, checked.stderr
    found = orjson.loads(checked.stdout)
    assert found["consistent_with_size"] > found["checkpoint_size"]
    no_token = run_cli("verify-bundle", bundle, "--vkey", vkey, "--url", server.url)
    assert no_token.returncode == 1
    assert "needs a token" in no_token.stderr.decode()


def test_a_signed_manifest_without_the_evidence_is_refused_plainly(
    log: tuple[App, bytes, Path],
) -> None:
    """A zip whose genuine manifest lists no checkpoint or entries (another tool's, say)
    is no evidence bundle: said so, not a KeyError."""
    app, bundle, _ = log
    files = _files(bundle)
    report = files["report.json"]
    lines = [
        "trailseal.dev/evidence-bundle/v1",
        "origin test.example/bundles",
        "checkpoint 1 " + base64.b64encode(bytes(32)).decode(),
        "entries 0",
        f"file {hashlib.sha256(report).hexdigest()} report.json",
    ]
    manifest = app.ledger.sign_statement("\n".join(lines) + "\n").encode()
    with pytest.raises(VerificationError, match="not an evidence bundle: no checkpoint"):
        verify_bundle(_zip({MANIFEST: manifest, "report.json": report}), app.verifier)
