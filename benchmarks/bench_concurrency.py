"""Many users at once through the web API: latency per kind of question, and errors.

    python benchmarks/bench_concurrency.py                       # 8 and 32 users, defaults
    python benchmarks/bench_concurrency.py --users 8 \\
        --config one=POLICY_QA_LLM_WORKERS=1 --config two=POLICY_QA_LLM_WORKERS=2

For each ``--config`` (environment variables for the server) it starts a real ``policy-qa
serve`` on 127.0.0.1 over the bundled corpus with the answerability check on, waits for its
model check, and lets N users (each its own ``gradio_client.Client``) ask at the same moment
through ``/ask``. Each user asks ``--per-user`` questions in turn, alternating between two
kinds taken from eval/daedeok.jsonl:

- ``plain``: the evidence scores decide alone (confidence outside ``judge.BAND``): no model call;
- ``borderline``: confidence inside the band: the model worker reads the passage (and for
  precise asks quotes from it), queued behind the other users' model calls.

It prints p50/p95/max seconds per kind, errors (an exception, or a turned-away user) and how
many answers carry the "answerability check failed" note (the worker crashed, hung, or was busy
longer than ``judge_timeout``), and writes all of it as JSON
(docs/decisions/051-concurrency.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from policy_qa import Assistant, Settings
from policy_qa.config import quiet_third_parties
from policy_qa.judge import BAND

REPO = Path(__file__).resolve().parents[1]
FAILED = "answerability check failed"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def classify(index_dir: Path, sets: list[Path]) -> dict[str, list[str]]:
    """The sets' questions split by whether their confidence falls in the check's band."""
    kinds: dict[str, list[str]] = {"plain": [], "borderline": []}
    with Assistant(settings=Settings(index_dir=index_dir, judge="off")) as qa:
        for path in sets:
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                if "question" not in row:
                    continue
                answer = qa.ask(row["question"])
                band = BAND[0] <= answer.confidence < BAND[1]
                kinds["borderline" if band else "plain"].append(row["question"])
    return kinds


class Server:
    """``policy-qa serve`` in a subprocess, ready once its model check has reported."""

    def __init__(self, index_dir: Path, env: dict[str, str], log_path: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        exe = Path(sys.executable).with_name("policy-qa")
        full = {
            **os.environ,
            "POLICY_QA_INDEX_DIR": str(index_dir),
            "POLICY_QA_PORT": str(self.port),
            "POLICY_QA_JUDGE": "on",
            **env,
        }
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(exe), "serve"], env=full, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.log_path = log_path

    def wait_ready(self, timeout: float = 600) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited:\n{self.log_path.read_text()[-2000:]}")
            text = self.log_path.read_text(errors="replace")
            said = [line for line in text.splitlines() if line.startswith("Answerability check:")]
            if said:
                try:
                    urllib.request.urlopen(self.url, timeout=5).read()
                    return said[-1]
                except OSError:
                    pass
            time.sleep(0.5)
        raise SystemExit(f"the server was not ready in {timeout:g} s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


def crowd(
    url: str, users: int, per_user: int, kinds: dict[str, list[str]], timeout: float | None
) -> list[dict[str, Any]]:
    """``users`` clients ask at once; one record per question asked."""
    from gradio_client import Client

    options = {} if timeout is None else {"timeout": timeout}
    clients = [Client(url, verbose=False, httpx_kwargs=options) for _ in range(users)]
    order = ("plain", "borderline")
    plan = []
    for u in range(users):
        asks = []
        for q in range(per_user):
            kind = order[(u + q) % 2]
            pool = kinds[kind]
            asks.append((kind, pool[(u * per_user + q) % len(pool)]))
        plan.append(asks)
    records: list[dict[str, Any]] = []
    lock = threading.Lock()
    start = threading.Barrier(users)

    def user(n: int) -> None:
        start.wait()
        for kind, question in plan[n]:
            began = time.perf_counter()
            record: dict[str, Any] = {"user": n, "kind": kind, "question": question}
            try:
                answer = clients[n].predict(question, api_name="/ask")
                record["notes"] = answer.get("notes", [])
                record["abstained"] = answer.get("abstained")
            except Exception as exc:  # a turned-away user or a server error: counted
                record["error"] = f"{type(exc).__name__}: {exc}"
            record["seconds"] = time.perf_counter() - began
            with lock:
                records.append(record)

    threads = [threading.Thread(target=user, args=(n,)) for n in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return records


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("plain", "borderline"):
        rows = [r for r in records if r["kind"] == kind]
        seconds = [r["seconds"] for r in rows if "error" not in r]
        out[kind] = {
            "asked": len(rows),
            "errors": sum("error" in r for r in rows),
            "check_failed": sum(any(FAILED in n for n in r.get("notes", [])) for r in rows),
            "p50": statistics.median(seconds) if seconds else None,
            "p95": _percentile(seconds, 0.95) if seconds else None,
            "max": max(seconds) if seconds else None,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="8,32", help="simultaneous users, comma-separated")
    parser.add_argument("--per-user", type=int, default=2, help="questions each user asks")
    parser.add_argument(
        "--config",
        action="append",
        metavar="NAME[=VAR=VALUE,...]",
        help="a server configuration (repeatable), e.g. two=POLICY_QA_LLM_WORKERS=2",
    )
    parser.add_argument(
        "--client-timeout",
        type=float,
        default=60.0,
        help="seconds a client waits for the server to take its question into the queue "
        "(gradio_client's own default is 5 s; a browser does not give up); 0: the default",
    )
    parser.add_argument("--workdir", type=Path, default=Path("bench-out/concurrency"))
    args = parser.parse_args(argv)
    timeout = args.client_timeout or None
    quiet_third_parties()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args.workdir.mkdir(parents=True, exist_ok=True)

    index_dir = args.workdir / "index"
    if not index_dir.exists():
        with Assistant(settings=Settings(index_dir=index_dir, judge="off")) as qa:
            qa.index([REPO / "corpus"])
    kinds_path = args.workdir / "kinds.json"
    if kinds_path.exists():
        kinds = json.loads(kinds_path.read_text())
    else:
        sets = [REPO / "eval" / "daedeok.jsonl", REPO / "eval" / "daedeok-heldout.jsonl"]
        kinds = classify(index_dir, sets)
        kinds_path.write_text(json.dumps(kinds, indent=2, ensure_ascii=False))
    print(
        f"{len(kinds['plain'])} plain and {len(kinds['borderline'])} borderline questions",
        file=sys.stderr,
    )

    configs: dict[str, dict[str, str]] = {}
    for spec in args.config or ["default"]:
        name, _, rest = spec.partition("=")
        configs[name] = dict(a.split("=", 1) for a in rest.split(",") if "=" in a)
    sizes = [int(n) for n in args.users.split(",") if n.strip()]

    results: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "per_user": args.per_user,
        "client_timeout": timeout,
        "runs": {},
    }
    for name, env in configs.items():
        server = Server(index_dir, env, args.workdir / f"server-{name}.log")
        try:
            said = server.wait_ready()
            print(f"{name}: {said}", file=sys.stderr)
            # One question of each kind first: the caches and the worker are warm for everyone.
            crowd(server.url, 1, 2, kinds, timeout)
            for users in sizes:
                load = os.getloadavg()[0]
                began = time.perf_counter()
                records = crowd(server.url, users, args.per_user, kinds, timeout)
                wall = time.perf_counter() - began
                summary = summarise(records)
                results["runs"][f"{name}/{users}"] = {
                    "config": env,
                    "users": users,
                    "wall_seconds": wall,
                    "load_average_before": load,
                    "summary": summary,
                    "records": records,
                }
                print(f"{name}/{users}: done in {wall:.0f} s", file=sys.stderr)
                _write(args.workdir / "bench_concurrency.json", results)
        finally:
            server.stop()

    print(f"{'config/users':<16}{'kind':<12}{'asked':>6}{'p50 s':>8}{'p95 s':>8}{'max s':>8}"
          f"{'errors':>8}{'no check':>10}{'wall s':>8}{'load':>6}")  # fmt: skip
    for key, run in results["runs"].items():
        for kind, row in run["summary"].items():
            cells = [
                f"{row[k]:>8.1f}" if row[k] is not None else f"{'-':>8}"
                for k in ("p50", "p95", "max")
            ]
            print(
                f"{key:<16}{kind:<12}{row['asked']:>6}{''.join(cells)}{row['errors']:>8}"
                f"{row['check_failed']:>10}{run['wall_seconds']:>8.0f}"
                f"{run['load_average_before']:>6.1f}"
            )
    path = _write(args.workdir / "bench_concurrency.json", results)
    print(f"wrote {path}")
    return 0


def _write(path: Path, results: dict[str, Any]) -> Path:
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))
    return path


if __name__ == "__main__":
    raise SystemExit(main())
