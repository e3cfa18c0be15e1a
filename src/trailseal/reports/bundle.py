"""Evidence bundles: a report, every entry it cites and the proof that each is in the log,
in one zip anyone can check offline with the log's public key.

Layout::

    manifest.note            every file's SHA-256, signed by the log's key (a signed note)
    checkpoint               the signed checkpoint every proof is against, verbatim
    verifier.key             the log's verifier key (the trust anchor is the one you hold)
    entries.jsonl            each cited entry as `trailseal export` writes it (with its
                             detail and salt unless erased)
    proofs/INDEX.tlog-proof  one C2SP tlog-proof per entry (c2sp.org/tlog-proof@v1)
    report.json, report.html, report.csv, report.pdf   the rendered report

The manifest's text is ``trailseal.dev/evidence-bundle/v1`` then ``key value`` lines
(origin, report, produced, checkpoint SIZE ROOT, entries N) and one
``file SHA256 PATH`` line per file; its second line is never a number, so it can never
be read as a checkpoint signed by the same key.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from trailseal.checkpoints import Checkpoint, Verifier, open_note
from trailseal.errors import TrailsealError, VerificationError
from trailseal.events.canonical import canonical
from trailseal.ledger.verify import read_export
from trailseal.proofs import leaf_hash, verify_consistency, verify_inclusion

MANIFEST = "manifest.note"
_REQUIRED = ("checkpoint", "verifier.key", "entries.jsonl")  # beside the manifest
HEADER = "trailseal.dev/evidence-bundle/v1"
PROOF_HEADER = "c2sp.org/tlog-proof@v1"
MAX_BUNDLE_FILE = 1 << 30  # bytes of one file inside a bundle, uncompressed
MAX_BUNDLE_TOTAL = 4 << 30
MAX_FILES = 2_000_000
_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*\Z")


def tlog_proof(index: int, proof: Sequence[bytes], checkpoint: str) -> bytes:
    """One C2SP tlog-proof: the header, the index, the audit path, then the checkpoint."""
    lines = [PROOF_HEADER, f"index {index}", *(base64.b64encode(h).decode() for h in proof)]
    return ("\n".join(lines) + "\n\n" + checkpoint).encode()


def parse_tlog_proof(data: bytes, where: str) -> tuple[int, list[bytes], str]:
    """(index, audit path, checkpoint note) of a tlog-proof, or VerificationError."""
    problem = f"{where}: not a {PROOF_HEADER} proof"
    try:
        head, separator, note = data.decode("utf-8").partition("\n\n")
    except UnicodeDecodeError:
        raise _fail("bad-proof", problem) from None
    lines = head.split("\n")
    rest = lines[1:]
    if rest and rest[0].startswith("extra "):
        rest = rest[1:]
    if not separator or lines[0] != PROOF_HEADER or not rest:
        raise _fail("bad-proof", problem)
    if not re.fullmatch(r"index (0|[1-9]\d{0,18})", rest[0]):
        raise _fail("bad-proof", f"{where}: no index line")
    try:
        path = [base64.b64decode(line, validate=True) for line in rest[1:]]
    except ValueError:
        path = []
    if len(path) != len(rest) - 1 or len(path) > 64 or any(len(h) != 32 for h in path):
        raise _fail("bad-proof", f"{where}: a proof line is not one base64 SHA-256 hash")
    return int(rest[0].split(" ")[1]), path, note


@dataclass
class BundleParts:
    """What goes into a bundle, gathered by the application."""

    origin: str
    report: str
    produced: str  # "UTC-TIME WHO"
    checkpoint: str
    verifier: str
    entries: list[bytes]  # export lines (entry, detail, salt), in index order
    proofs: Mapping[int, Sequence[bytes]]
    files: dict[str, bytes] = field(default_factory=dict)  # rendered report files


def build(parts: BundleParts, sign: Callable[[str], str]) -> bytes:
    """The bundle as zip bytes, its manifest signed with ``sign`` (the log's key)."""
    checkpoint = Checkpoint.parse_text(parts.checkpoint.split("\n\n", 1)[0] + "\n")
    contents: dict[str, bytes] = dict(parts.files)
    contents["checkpoint"] = parts.checkpoint.encode()
    contents["verifier.key"] = (parts.verifier + "\n").encode()
    contents["entries.jsonl"] = b"".join(parts.entries)
    for index, proof in parts.proofs.items():
        contents[f"proofs/{index}.tlog-proof"] = tlog_proof(index, proof, parts.checkpoint)
    lines = [
        HEADER,
        f"origin {parts.origin}",
        f"report {parts.report}",
        f"produced {parts.produced}",
        f"checkpoint {checkpoint.size} {base64.b64encode(checkpoint.root).decode()}",
        f"entries {len(parts.entries)}",
        *(
            f"file {hashlib.sha256(data).hexdigest()} {name}"
            for name, data in sorted(contents.items())
        ),
    ]
    manifest = sign("\n".join(_one_line(line) for line in lines) + "\n")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST, manifest)
        for name, data in sorted(contents.items()):
            archive.writestr(name, data)
    return out.getvalue()


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "-"


@dataclass(frozen=True)
class BundleReport:
    origin: str
    report: str
    produced: str
    size: int
    root: str
    entries: int
    files: int
    against: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "verified": True,
            "origin": self.origin,
            "report": self.report,
            "produced": self.produced,
            "checkpoint_size": self.size,
            "root": self.root,
            "entries": self.entries,
            "files": self.files,
            "consistent_with_size": self.against,
        }


def _fail(kind: str, message: str) -> VerificationError:
    return VerificationError(kind, message)


# What reading a damaged zip raises, beyond BadZipFile (found by tests/test_bundles.py).
_UNREADABLE = (
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    KeyError,
    RuntimeError,  # zipfile's "password required", should a flag say encrypted after all
)


def _read_zip(data: bytes) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _UNREADABLE as exc:
        raise _fail("not-a-bundle", f"not a zip file ({exc}); a bundle is a .zip") from None
    infos = archive.infolist()
    if len(infos) > MAX_FILES:
        raise _fail("not-a-bundle", f"more than {MAX_FILES} files")
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        raise _fail("files-added", "a file name appears twice in the zip")
    if sum(info.file_size for info in infos) > MAX_BUNDLE_TOTAL:
        raise _fail("not-a-bundle", "larger than a bundle may be when unpacked")
    contents = {}
    for info in infos:
        if info.is_dir():
            continue
        if info.flag_bits & 0x1:  # a bundle is never encrypted; zipfile would ask a password
            raise _fail("not-a-bundle", f"{info.filename[:100]!r} is marked encrypted")
        if not _SAFE_NAME.match(info.filename) or info.file_size > MAX_BUNDLE_FILE:
            raise _fail("files-added", f"unexpected file {info.filename[:100]!r} in the bundle")
        try:
            contents[info.filename] = archive.read(info)
        except _UNREADABLE as exc:
            raise _fail("truncated", f"{info.filename}: cannot be read ({exc})") from None
    return contents


def _manifest(note: bytes, verifier: Verifier) -> dict[str, Any]:
    try:
        text = open_note(note.decode("utf-8"), verifier)
    except UnicodeDecodeError:
        raise _fail("bad-manifest", "the manifest is not UTF-8") from None
    except VerificationError as exc:
        raise _fail(
            "bad-manifest",
            f"the manifest is not signed by the key you trust ({exc.message}); "
            "it was forged, re-signed by another key, or changed",
        ) from None
    lines = text.rstrip("\n").split("\n")
    if lines[0] != HEADER:
        raise _fail("bad-manifest", f"the manifest is not a {HEADER}")
    found: dict[str, Any] = {"files": {}}
    for line in lines[1:]:
        key, _, value = line.partition(" ")
        if key == "file":
            digest, _, name = value.partition(" ")
            found["files"][name] = digest
        else:
            found[key] = value
    try:
        size, root = found["checkpoint"].split(" ")
        found["size"], found["root"] = int(size), base64.b64decode(root, validate=True)
        found["entries"] = int(found["entries"])
    except (KeyError, ValueError):
        raise _fail(
            "bad-manifest", "the manifest has no valid checkpoint or entries line"
        ) from None
    return found


def _entries(data: bytes) -> dict[int, bytes]:
    """Leaf hashes of the bundle's entries, each checked against its detail commitment."""
    leaves: dict[int, bytes] = {}
    for number, entry, detail, salt in read_export(data.splitlines()):
        try:
            body = canonical(entry)
            index = entry["index"]
        except (TrailsealError, KeyError, TypeError) as exc:
            raise _fail(
                "changed-entry", f"entries.jsonl line {number}: not an entry ({exc})"
            ) from None
        if not isinstance(index, int) or isinstance(index, bool) or index in leaves:
            raise _fail(
                "entries-added",
                f"entries.jsonl line {number}: index {index!r} appears twice or is not a number",
            )
        _check_commitment(index, entry, detail, salt)
        leaves[index] = leaf_hash(body)
    return leaves


def _check_commitment(
    index: int, entry: Mapping[str, Any], detail: bytes | None, salt: bytes | None
) -> None:
    if detail is None:
        return
    event = entry.get("event")
    committed = event.get("detail_commitment") if isinstance(event, Mapping) else None
    if committed is None or salt is None or hashlib.sha256(salt + detail).hexdigest() != committed:
        raise _fail("changed-entry", f"entry {index}: its detail does not match its commitment")


def verify_bundle(
    data: bytes,
    verifier: Verifier,
    *,
    against: str | None = None,
    consistency: Sequence[bytes] | None = None,
) -> BundleReport:
    """Check a bundle with no database: the signed manifest, every file's hash, every
    entry's hashes and detail, every inclusion proof against the bundle's checkpoint, and
    (``against`` a later checkpoint, with the ``consistency`` proof to it) that the log
    the bundle came from is still a prefix of today's."""
    contents = _read_zip(data)
    if MANIFEST not in contents:
        raise _fail("files-removed", f"no {MANIFEST}: not an evidence bundle, or it was removed")
    manifest = _manifest(contents.pop(MANIFEST), verifier)
    _check_files(contents, manifest["files"])
    missing = [name for name in _REQUIRED if name not in contents]
    if missing:
        raise _fail("files-removed", f"not an evidence bundle: no {', '.join(missing)}")
    note = contents["checkpoint"].decode("utf-8", errors="replace")
    checkpoint = Checkpoint.open(note, verifier, manifest.get("origin"))
    if (checkpoint.size, checkpoint.root) != (manifest["size"], manifest["root"]):
        raise _fail("bad-checkpoint", "the checkpoint is not the one the manifest names")
    bundled_key = contents["verifier.key"].decode("utf-8", errors="replace").strip()
    if bundled_key != str(verifier):
        raise _fail("bad-manifest", "the bundle's verifier.key is not the key you trust")
    leaves = _entries(contents["entries.jsonl"])
    if len(leaves) != manifest["entries"]:
        raise _fail(
            "entries-removed", f"{len(leaves)} entries; the manifest says {manifest['entries']}"
        )
    _check_proofs(contents, leaves, checkpoint, note)
    _check_cited(contents, leaves)
    later = None
    if against is not None:
        later = _consistent(checkpoint, against, verifier, consistency)
    return BundleReport(
        origin=manifest.get("origin", ""),
        report=manifest.get("report", ""),
        produced=manifest.get("produced", ""),
        size=checkpoint.size,
        root=checkpoint.root.hex(),
        entries=len(leaves),
        files=len(manifest["files"]),
        against=later,
    )


def _check_files(contents: Mapping[str, bytes], listed: Mapping[str, str]) -> None:
    """Exactly the files the manifest lists, each with the hash it signed."""
    added = sorted(set(contents) - set(listed))
    removed = sorted(set(listed) - set(contents))
    if added:
        raise _fail("files-added", f"files the manifest does not list: {', '.join(added[:10])}")
    if removed:
        raise _fail("files-removed", f"listed files are missing: {', '.join(removed[:10])}")
    for name, digest in listed.items():
        if hashlib.sha256(contents[name]).hexdigest() != digest:
            kind = "changed-entry" if name == "entries.jsonl" else "changed-file"
            raise _fail(kind, f"{name} is not the file the manifest signed (SHA-256 differs)")


def _check_proofs(
    contents: Mapping[str, bytes], leaves: Mapping[int, bytes], checkpoint: Checkpoint, note: str
) -> None:
    """One proof per entry, each leading to the checkpoint's root, and no other proof."""
    proofs = {name for name in contents if name.startswith("proofs/")}
    for index, leaf in leaves.items():
        name = f"proofs/{index}.tlog-proof"
        if name not in contents:
            raise _fail("bad-proof", f"entry {index} has no inclusion proof")
        proven, path, proof_note = parse_tlog_proof(contents[name], name)
        if proven != index or proof_note != note:
            raise _fail("bad-proof", f"{name} is for another index or another checkpoint")
        if index >= checkpoint.size:
            raise _fail("bad-proof", f"entry {index} is beyond the checkpoint's {checkpoint.size}")
        verify_inclusion(index, checkpoint.size, leaf, path, checkpoint.root)
        proofs.discard(name)
    if proofs:
        raise _fail("bad-proof", f"proofs of entries the bundle lacks: {sorted(proofs)[:5]}")


def _check_cited(contents: Mapping[str, bytes], leaves: Mapping[int, bytes]) -> None:
    if "report.json" not in contents:
        return
    try:
        cited = orjson.loads(contents["report.json"]).get("cited", [])
    except (orjson.JSONDecodeError, AttributeError):
        raise _fail("changed-file", "report.json is not a report") from None
    missing = sorted(set(cited) - set(leaves))
    if missing:
        raise _fail("entries-removed", f"the report cites entries the bundle lacks: {missing[:10]}")


def _consistent(
    checkpoint: Checkpoint, against: str, verifier: Verifier, proof: Sequence[bytes] | None
) -> int:
    later = Checkpoint.open(against, verifier, checkpoint.origin)
    if later.size < checkpoint.size:
        raise _fail(
            "bad-checkpoint",
            f"the later checkpoint ({later.size} entries) is older than the bundle's "
            f"({checkpoint.size})",
        )
    if later.size == checkpoint.size:
        if later.root != checkpoint.root:
            raise _fail("rewritten", "the log was rewritten: same size, another root")
        return later.size
    if proof is None:
        raise _fail(
            "bad-proof",
            f"checking against a later checkpoint needs the consistency proof from "
            f"{checkpoint.size} to {later.size} (trailseal prove consistency "
            f"{checkpoint.size} {later.size} > proof.json; --consistency proof.json)",
        )
    verify_consistency(checkpoint.size, later.size, checkpoint.root, later.root, list(proof))
    return later.size


def bundle_checkpoint(data: bytes, verifier: Verifier) -> int:
    """The size of the checkpoint a bundle's proofs are against (checked by ``verifier``)."""
    contents = _read_zip(data)
    if "checkpoint" not in contents:
        raise _fail("files-removed", "the bundle has no checkpoint")
    return Checkpoint.open(contents["checkpoint"].decode("utf-8", errors="replace"), verifier).size


def read_consistency(data: bytes) -> tuple[int, int, list[bytes]]:
    """A consistency proof as `trailseal prove consistency` prints it (JSON)."""
    try:
        found = orjson.loads(data)
        proof = [bytes.fromhex(h) for h in found["proof"]]
        return int(found["old_size"]), int(found["new_size"]), proof
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise _fail("bad-proof", f"not a consistency proof ({exc})") from None


def cited_indexes(items: Iterable[int]) -> list[int]:
    return sorted(set(items))
