"""Many users at once through the web API: latency per kind of question, errors, load.

    python benchmarks/bench_concurrency.py --quick   # a few minutes: 1 and 32 users, 1 each
    python benchmarks/bench_concurrency.py           # 1, 8 and 32 users, 2 questions each
    python benchmarks/bench_concurrency.py --users 8 \\
        --config one=POLICY_QA_LLM_WORKERS=1 --config two=POLICY_QA_LLM_WORKERS=2

For each ``--config`` (environment variables for the server) it starts a real ``policy-qa
serve`` on 127.0.0.1 over the bundled corpus with the answerability check on, waits for its
model check, and for each load and number of users N lets N users ask at the same moment
through ``/ask``, ``--per-user`` questions each, in turn. A user is a thread with its own HTTP
connection calling the API as ``curl`` would (``--client gradio``: its own
``gradio_client.Client``), 10 nicer than the server (``--client-nice``): users stand in for
browsers on other machines, so what gets timed is the server's work. The questions come from
eval/daedeok.jsonl and daedeok-heldout.jsonl, in two kinds:

- ``plain``: no model call at all (classified once by counting the worker pool's calls);
- ``borderline``: the model worker reads the passage (confidence inside ``judge.BAND``; or a
  Korean question translated, a span's facts confirmed), queued behind other users' calls.

Loads (``--loads``): ``plain``, every user asks plain questions only (retrieval and extractive
answers under contention, no model call anywhere); ``mixed``, users alternate between the kinds
(plain questions share the 2 cores with the model worker).

The full run takes 1, 8 and 32 users, two questions each, both loads (~10 minutes on 2 cores);
``--quick`` takes 1 and 32 users, one question each (a few minutes, for ``make bench``). A size
given twice (``--users 32,32``) runs again with the server's caches warm. It prints errors (an
exception, or a turned-away user), p50/p95/max seconds per kind, how many answers carry the
"answerability check failed" note (the worker crashed, hung, or was busy longer than
``judge_timeout``), the server's CPU seconds in the row (without its model worker) and the
1-minute load average before and after each row (the machine may be shared: read the numbers
with it), and writes all of it as JSON
(docs/decisions/051-concurrency.md, docs/decisions/106-many-users-at-once.md). ``--py-spy
busy`` (or ``idle``: waiting threads too) records the server during each row as collapsed
stacks, one file per row in ``--workdir`` (106, "A first burst, profiled").
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
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
from policy_qa.judge import BAND, make_judge

REPO = Path(__file__).resolve().parents[1]
FAILED = "answerability check failed"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def classify(index_dir: Path, sets: list[Path]) -> dict[str, list[str]]:
    """The sets' questions split by whether answering them calls the model.

    A confidence inside the check's band always does (``borderline``). Outside it a question
    may still call the model: a Korean question over English passages is translated first, a
    span of years has its facts confirmed. So the rest are asked again with the check on, and a
    question is ``plain`` only if the model's worker pool served no call for it.
    """
    kinds: dict[str, list[str]] = {"plain": [], "borderline": []}
    outside: list[str] = []
    with Assistant(settings=Settings(index_dir=index_dir, judge="off")) as qa:
        for path in sets:
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                if "question" not in row:
                    continue
                answer = qa.ask(row["question"])
                band = BAND[0] <= answer.confidence < BAND[1]
                (kinds["borderline"] if band else outside).append(row["question"])
    settings = Settings(index_dir=index_dir, judge="on")
    judge = make_judge(settings)
    assert judge is not None
    with Assistant(settings=settings) as qa:  # its check shares ``judge``'s worker pool
        for question in outside:
            calls = judge.pool.calls
            qa.ask(question)
            kinds["plain" if judge.pool.calls == calls else "borderline"].append(question)
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

    def cpu_seconds(self) -> float:
        """CPU time the server process has used (its model worker not included)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


LOADS = {"plain": ("plain",), "mixed": ("plain", "borderline")}  # the kinds users take in turn
CLIENTS = ("http", "gradio")


class HttpUser:
    """One user of the web API's plain HTTP form (what ``curl`` does, as the API page shows):
    ``POST /gradio_api/call/ask`` for an event id, then its server-sent events until
    ``complete``. Light on the cores the server shares: ``gradio_client`` took several times
    the server's own CPU per question here (docs/decisions/106-many-users-at-once.md)."""

    def __init__(self, url: str, timeout: float | None) -> None:
        import httpx

        self._url = url
        self._http = httpx.Client(timeout=timeout or 60.0)

    def predict(self, question: str, api_name: str) -> dict[str, Any]:
        call = f"{self._url}gradio_api/call/{api_name.strip('/')}"
        joined = self._http.post(call, json={"data": [question, None, None]})
        if joined.status_code != 200:  # 503: the queue is full
            raise RuntimeError(f"HTTP {joined.status_code}: {joined.text[:200]}")
        event = ""
        with self._http.stream("GET", f"{call}/{joined.json()['event_id']}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line[len("event: ") :]
                elif line.startswith("data: ") and event in ("complete", "error"):
                    data = json.loads(line[len("data: ") :])
                    if event == "error":
                        raise RuntimeError(f"the server said: {data}")
                    return dict(data[0])
        raise RuntimeError(f"the event stream ended without a result (last event {event!r})")


def crowd(
    url: str,
    users: int,
    per_user: int,
    kinds: dict[str, list[str]],
    timeout: float | None,
    load: str = "mixed",
    nice: int = 0,
    kind_of_client: str = "http",
) -> list[dict[str, Any]]:
    """``users`` clients ask at once; one record per question asked."""
    from gradio_client import Client

    options = {} if timeout is None else {"timeout": timeout}
    client_nice = min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice)
    order = LOADS[load]
    plan = []
    for u in range(users):
        asks = []
        for q in range(per_user):
            kind = order[(u + q) % len(order)]
            pool = kinds[kind]
            asks.append((kind, pool[(u * per_user + q) % len(pool)]))
        plan.append(asks)
    records: list[dict[str, Any]] = []
    lock = threading.Lock()
    start = threading.Barrier(users)

    def user(n: int) -> None:
        # The simulated users stand in for browsers on other machines: on the server's own
        # cores they run nicer than it (threads inherit it), so that what is timed is the
        # server's work, not the clients' (docs/decisions/106-many-users-at-once.md).
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), client_nice)
        client: Any = (
            HttpUser(url, timeout)
            if kind_of_client == "http"
            else Client(url, verbose=False, httpx_kwargs=options)
        )
        start.wait()
        for kind, question in plan[n]:
            began = time.perf_counter()
            record: dict[str, Any] = {"user": n, "kind": kind, "question": question}
            try:
                answer = client.predict(question, api_name="/ask")
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


def _py_spy(server: Server, mode: str | None, out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy recording the server from now until sent SIGINT (None: not asked for). Where a
    burst's CPU went: docs/decisions/106-many-users-at-once.md, "A first burst, profiled"."""
    if mode is None:
        return None
    exe = Path(sys.executable).with_name("py-spy")
    command = [str(exe), "record", "-r", "100", "-f", "raw", "-o", str(out), "--threads"]
    command += ["--pid", str(server.proc.pid), *(["--idle"] if mode == "idle" else [])]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)  # attached before the users come
    return spy


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
    parser.add_argument("--users", default="1,8,32", help="simultaneous users, comma-separated")
    parser.add_argument("--per-user", type=int, default=2, help="questions each user asks")
    parser.add_argument(
        "--loads",
        default="plain,mixed",
        help=f"which questions users ask, comma-separated: {', '.join(LOADS)}",
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 and 32 users, one question each (a few minutes)"
    )
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
    parser.add_argument(
        "--client",
        choices=CLIENTS,
        default="http",
        help="how the simulated users call /ask: plain HTTP (default) or gradio_client",
    )
    parser.add_argument(
        "--client-nice",
        type=int,
        default=10,
        help="how much nicer than the server the simulated users run (0: as nice)",
    )
    parser.add_argument(
        "--py-spy",
        choices=("busy", "idle"),
        help="record the server with py-spy during each row (collapsed stacks, 100 Hz, a file "
        "per row in --workdir; idle: waiting threads too)",
    )
    parser.add_argument("--workdir", type=Path, default=Path("bench-out/concurrency"))
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.per_user = "1,32", 1
    timeout = args.client_timeout or None
    loads = [name for name in args.loads.split(",") if name.strip()]
    unknown = [name for name in loads if name not in LOADS]
    if unknown:
        parser.error(f"unknown load {unknown[0]!r}: choose from {', '.join(LOADS)}")
    quiet_third_parties()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args.workdir.mkdir(parents=True, exist_ok=True)

    index_dir = args.workdir / "index"
    if not index_dir.exists():
        with Assistant(settings=Settings(index_dir=index_dir, judge="off")) as qa:
            qa.index([REPO / "corpus"])
    # v2: "plain" means no model call at all (v1 counted translated Korean questions in it).
    kinds_path = args.workdir / "kinds-v2.json"
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
        "client_nice": args.client_nice,
        "client": args.client,
        "runs": {},
    }
    for name, env in configs.items():
        server = Server(index_dir, env, args.workdir / f"server-{name}.log")
        try:
            said = server.wait_ready()
            print(f"{name}: {said}", file=sys.stderr)
            # One question of each kind first: the caches and the worker are warm for everyone.
            crowd(server.url, 1, 2, kinds, timeout, kind_of_client=args.client)
            for load in loads:
                for users in sizes:
                    before = os.getloadavg()[0]
                    key = f"{name}/{load}/{users}"
                    while key in results["runs"]:  # a size given twice: again, caches warm
                        key += "'"
                    trace = args.workdir / f"py-spy-{key.replace('/', '-')}.txt"
                    spy = _py_spy(server, args.py_spy, trace)
                    began, cpu, own = time.perf_counter(), server.cpu_seconds(), time.process_time()
                    records = crowd(
                        server.url,
                        users,
                        args.per_user,
                        kinds,
                        timeout,
                        load,
                        args.client_nice,
                        args.client,
                    )
                    wall = time.perf_counter() - began
                    if spy is not None:
                        spy.send_signal(signal.SIGINT)  # py-spy writes its file and exits
                        spy.wait(timeout=60)
                    results["runs"][key] = {
                        "config": env,
                        "load": load,
                        "users": users,
                        "wall_seconds": wall,
                        "load_average_before": before,
                        "load_average_after": os.getloadavg()[0],
                        # Where the CPU went: the server (without its model worker), and the
                        # simulated users' clients in this process.
                        "server_cpu_seconds": server.cpu_seconds() - cpu,
                        "clients_cpu_seconds": time.process_time() - own,
                        "summary": summarise(records),
                        "records": records,
                    }
                    print(f"{key}: done in {wall:.0f} s", file=sys.stderr)
                    _write(args.workdir / "bench_concurrency.json", results)
        finally:
            server.stop()

    # "cpu s": the server process's CPU seconds in the row (not its model worker's).
    heads = ("asked", "errors", "p50 s", "p95 s", "max s", "no check", "wall s", "cpu s")
    print(f"{'config/load/users':<22}{'kind':<12}{''.join(f'{h:>9}' for h in heads)}  load 1-min")
    for key, run in results["runs"].items():
        for kind, row in run["summary"].items():
            if not row["asked"]:
                continue
            cells = [
                f"{row[k]:>9.1f}" if row[k] is not None else f"{'-':>9}"
                for k in ("p50", "p95", "max")
            ]
            print(
                f"{key:<22}{kind:<12}{row['asked']:>9}{row['errors']:>9}{''.join(cells)}"
                f"{row['check_failed']:>9}{run['wall_seconds']:>9.0f}"
                f"{run['server_cpu_seconds']:>9.1f}"
                f"  {run['load_average_before']:.1f} -> {run['load_average_after']:.1f}"
            )
    print("(2 cores shared with other jobs: read the numbers with the load average)")
    path = _write(args.workdir / "bench_concurrency.json", results)
    print(f"wrote {path}")
    return 0


def _write(path: Path, results: dict[str, Any]) -> Path:
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))
    return path


if __name__ == "__main__":
    raise SystemExit(main())
