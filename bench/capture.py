"""Benchmark capture: what the middleware adds to a request, and what change capture costs a write.

    python bench/capture.py                      # 20,000 requests, 2,000 transactions
    python bench/capture.py --requests 5000 --transactions 500

Prints, in one run:

- **middleware**: per-request latency of a FastAPI endpoint called through ASGI
  in-process (no network, so the difference is the middleware alone), without
  and with :class:`AuditMiddleware` emitting through a real
  :class:`trailseal.client.Client` to a real trailseal service; blocks of the
  two are interleaved so drift on this noisy machine hits both;
- **ORM writes**: row writes per second of one workload (each transaction adds
  5 patients and changes 5 others) through SQLAlchemy on an SQLite file (WAL,
  synchronous=NORMAL): plain, with trailseal's change capture (outbox written
  in the same transaction), and with SQLAlchemy-Continuum as the peer. Each
  runs in its own process, since Continuum hooks every mapper and session.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

BATCH = 5  # inserts and updates per transaction


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--transactions", type=int, default=2_000)
    parser.add_argument("--orm-variant", help=argparse.SUPPRESS)  # a child process's part
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.orm_variant:
        print(json.dumps(orm_workload(args.orm_variant, Path(args.db), args.transactions)))
        return
    scratch = Path(tempfile.mkdtemp(prefix="trailseal-capture-"))
    try:
        rows = middleware_rows(args.requests, scratch) + orm_rows(args.transactions, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    width = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in (("measure", "result", "target"), *rows):
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, width, strict=True)))


# -- middleware ------------------------------------------------------------------


def _app() -> Any:
    from fastapi import FastAPI  # noqa: PLC0415 - only the parent process needs it

    from trailseal.capture import set_actor  # noqa: PLC0415

    app = FastAPI()

    @app.get("/patients/{patient_id}")
    async def read_patient(patient_id: str) -> dict[str, str]:
        set_actor("u-1042", roles=["nurse"], unit="3B")
        return {"id": patient_id, "name": "A. Jones", "ward": "3B"}

    return app


async def _timed(app: Any, count: int, into: list[int]) -> None:
    scope_base = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"ehr"), (b"user-agent", b"bench")],
        "client": ("10.1.2.3", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: dict[str, Any]) -> None:
        return None

    clock = time.perf_counter_ns
    for n in range(count):
        scope = scope_base | {"path": f"/patients/p-{n}", "raw_path": f"/patients/p-{n}".encode()}
        started = clock()
        await app(scope, receive, send)
        into.append(clock() - started)


def middleware_rows(requests: int, scratch: Path) -> list[tuple[str, str, str]]:
    from trailseal.capture import AuditMiddleware, Resource  # noqa: PLC0415
    from trailseal.client import Client  # noqa: PLC0415
    from trailseal.testing import ServiceProcess  # noqa: PLC0415

    print(f"middleware: {requests:,} requests each way ...", file=sys.stderr)
    service = ServiceProcess.boot(scratch / "served", "--rate", "100000")
    try:
        client = Client(service.url, service.principal("ehr", "writer"), scratch / "spool")
        plain = _app()
        audited = AuditMiddleware(
            _app(),
            client,
            service="ehr",
            resources=[Resource("/patients", "patient", "patient_id")],
        )
        without: list[int] = []
        with_: list[int] = []
        block = 1000

        async def run() -> None:
            await _timed(plain, 500, [])  # warm both paths up
            await _timed(audited, 500, [])
            for _ in range(max(1, requests // block)):
                await _timed(plain, block, without)
                await _timed(audited, block, with_)

        asyncio.run(run())
        client.close(timeout=300)
        delivered = client.status.sent
    finally:
        service.stop()

    def pct(values: list[int], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] / 1000

    added50 = pct(with_, 0.5) - pct(without, 0.5)
    added99 = pct(with_, 0.99) - pct(without, 0.99)
    return [
        ("requests (each way)", f"{len(without):,}", ""),
        (
            "request without middleware: p50 / p99",
            f"{pct(without, 0.5):.1f} / {pct(without, 0.99):.1f} us",
            "",
        ),
        (
            "request with middleware: p50 / p99",
            f"{pct(with_, 0.5):.1f} / {pct(with_, 0.99):.1f} us",
            "",
        ),
        ("added by the middleware: p50 / p99", f"{added50:.1f} / {added99:.1f} us", "p50 < 100 us"),
        ("events delivered to the service", f"{delivered:,}", f"{len(with_) + 500:,}"),
    ]


# -- ORM writes -------------------------------------------------------------------


def orm_rows(transactions: int, scratch: Path) -> list[tuple[str, str, str]]:
    results: dict[str, float] = {}
    for variant in ("plain", "trailseal", "continuum"):
        print(f"ORM writes: {variant} ...", file=sys.stderr)
        output = subprocess.run(
            [
                sys.executable,
                __file__,
                "--orm-variant",
                variant,
                "--db",
                str(scratch / f"{variant}.db"),
                "--transactions",
                str(transactions),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results[variant] = json.loads(output)["rows_per_second"]
    plain = results["plain"]

    def slower(variant: str) -> str:
        return f"{(1 - results[variant] / plain) * 100:.0f}% slower"

    return [
        ("ORM row writes", f"{transactions * BATCH * 2:,}", ""),
        ("plain SQLAlchemy", f"{plain:,.0f}/s", ""),
        (
            "with trailseal change capture",
            f"{results['trailseal']:,.0f}/s ({slower('trailseal')})",
            "<= 30% slower",
        ),
        (
            "with SQLAlchemy-Continuum (peer)",
            f"{results['continuum']:,.0f}/s ({slower('continuum')})",
            "",
        ),
    ]


def orm_workload(variant: str, db: Path, transactions: int) -> dict[str, float]:
    """One variant in this process: seed, then time the transactions."""
    if variant == "continuum":
        from sqlalchemy_continuum import make_versioned  # noqa: PLC0415

        make_versioned(user_cls=None)

    class Base(DeclarativeBase):
        pass

    class Patient(Base):
        __tablename__ = "patients"
        if variant == "continuum":
            __versioned__: dict[str, Any] = {}
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(sa.String(100))
        ward: Mapped[str] = mapped_column(sa.String(10))
        mrn: Mapped[str] = mapped_column(sa.String(20))

    sa.orm.configure_mappers()
    engine = sa.create_engine(f"sqlite:///{db}")

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi: Any, _record: Any) -> None:
        dbapi.execute("PRAGMA journal_mode=WAL")
        dbapi.execute("PRAGMA synchronous=NORMAL")

    Base.metadata.create_all(engine)
    factory = sessionmaker(engine)
    if variant == "trailseal":
        from trailseal.capture.orm import ChangeCapture  # noqa: PLC0415
        from trailseal.capture.outbox import Outbox  # noqa: PLC0415

        outbox = Outbox()
        outbox.create(engine)
        ChangeCapture(outbox, service="ehr").attach(factory)
    with factory.begin() as session:  # the rows the transactions change
        session.add_all(
            Patient(name=f"seed {n}", ward="3B", mrn=f"M{n}") for n in range(transactions * BATCH)
        )
    started = time.perf_counter()
    for t in range(transactions):
        with factory.begin() as session:
            for n in range(BATCH):
                session.add(Patient(name=f"new {t}-{n}", ward="4A", mrn=f"N{t}-{n}"))
            changed = session.scalars(
                sa.select(Patient).where(Patient.id.between(t * BATCH + 1, t * BATCH + BATCH))
            ).all()
            for patient in changed:
                patient.ward = "ICU"
    elapsed = time.perf_counter() - started
    return {"rows_per_second": transactions * BATCH * 2 / elapsed}


if __name__ == "__main__":
    main()
