"""Load test of `weightspace serve`: latency, throughput and memory under concurrent requests.

    python benchmarks/serve_load.py                      # 500 requests, 8 in flight, 2 server threads
    python benchmarks/serve_load.py --requests 2000 --concurrency 16 --write /work/notes/results_serve.md

Bounded and local: the server is a `weightspace serve` child process on 127.0.0.1 (a port the
OS picks); nothing else is contacted. The generator is real: a digits-rotate zoo built with
``weightspace.zoo.build_zoo`` (shared init) and a pca-gaussian generator fitted on it with the
generate API, both cached under --cache. Every request sends a real support set (100 labelled
digits of a zoo or held-out task, ~140 kB of JSON) with its own seed and asks for one model
(best of 4 candidates); a response counts as failed unless it is 200 and holds a state dict of
the generator's weight space. Latency is measured by the client, per request; throughput is
requests / wall time of the whole run. The server's RSS is read from /proc/<pid>/status every
50 ms; the report gives it after start-up, after a warm-up of --warmup requests, half-way and
at the end, so a leak would show as growth between the last three.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import torch
from safetensors.torch import load as load_bytes

LAUNCH = "import sys, weightspace.cli.serve_cmd; from weightspace.cli import main; sys.exit(main(sys.argv[1:]))"


def build_generator(cache: Path) -> Path:
    """A pca-gaussian generator on a small real zoo, built once and reused."""
    from weightspace.generate import make_generator, zoo_data
    from weightspace.nets import MLP
    from weightspace.tasks import make_family
    from weightspace.zoo.build import build_zoo
    from weightspace.zoo.train import TrainConfig

    gen_dir = cache / "generator"
    if (gen_dir / "config.json").is_file():
        return gen_dir
    torch.set_num_threads(1)
    family = make_family("digits-rotate", n_tasks=8, n_heldout=2)
    arch = MLP(input_shape=family.input_shape, n_classes=family.n_classes, hidden=(32,))
    zoo = build_zoo(cache / "zoo", family, arch, TrainConfig(steps=300), seeds_per_task=2, init="shared",
                    pretrain_steps=300, workers=0, progress=False)
    make_generator("pca-gaussian").fit(zoo_data.from_zoo(zoo, "support")).save(gen_dir)
    return gen_dir


def request_bodies(generator_dir: Path) -> list[dict]:
    from weightspace.generate import load_generator
    from weightspace.tasks import family_from_dict

    family = family_from_dict(load_generator(generator_dir).fit_info["family"])
    tasks = [family.task(t) for t in family.zoo_task_ids() + family.heldout_task_ids()]
    return [{"support": {"x": t.support_x.tolist(), "y": t.support_y.tolist()}, "n": 1, "best_of": 4} for t in tasks]


def rss_kib(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1))


class RssSampler(threading.Thread):
    """(seconds, RSS KiB, requests done) every ``period`` seconds, until stopped."""

    def __init__(self, pid: int, done: list[int], period: float = 0.05):
        super().__init__(daemon=True)
        self.pid, self.done, self.period = pid, done, period
        self.samples: list[tuple[float, int, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self.stop.is_set():
            self.samples.append((time.monotonic() - start, rss_kib(self.pid), self.done[0]))
            self.stop.wait(self.period)

    def at(self, done: int) -> int:
        """RSS in the first sample taken once ``done`` requests had completed."""
        return next((rss for _, rss, d in self.samples if d >= done), self.samples[-1][1])


async def run_load(base: str, bodies: list[dict], count: int, concurrency: int, expected: dict[str, tuple],
                   done: list[int], seed0: int) -> tuple[list[float], list[str]]:
    latencies: list[float] = []
    failures: list[str] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            body = {**bodies[i % len(bodies)], "seed": seed0 + i}
            t0 = time.perf_counter()
            try:
                r = await client.post("/v1/generate", json=body)
                ok = r.status_code == 200 and {k: tuple(v.shape) for k, v in load_bytes(r.content).items()} == expected
                if not ok:
                    failures.append(f"{r.status_code} {r.text[:200]}")
            except Exception as e:  # a transport error is a failed request too
                failures.append(f"{type(e).__name__}: {e}")
            latencies.append(time.perf_counter() - t0)
            done[0] += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return latencies, failures


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text()).group(1)
    except (OSError, AttributeError):
        pass
    return (f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, torch {torch.__version__}, load average before the run "
            f"{os.getloadavg()[0]:.2f}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2, help="server generation threads (--workers-threads)")
    ap.add_argument("--warmup", type=int, default=20, help="requests before the measured run")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/weightspace-serve-bench"))
    ap.add_argument("--write", type=Path, default=None, help="also write the report (markdown) here")
    args = ap.parse_args()

    gen_dir = build_generator(args.cache)
    bodies = request_bodies(gen_dir)
    from weightspace.generate import load_generator

    expected = {t.name: t.shape for t in load_generator(gen_dir).spec.tensors}
    cmd = [sys.executable, "-c", LAUNCH, "serve", str(gen_dir), "--host", "127.0.0.1", "--port", "0",
           "--workers-threads", str(args.threads), "--no-access-log"]
    server = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()
        match = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        if not match:
            raise SystemExit(f"the server did not start: {line}{server.stderr.read()}")
        base = match.group(1)
        threading.Thread(target=server.stderr.read, daemon=True).start()  # keep its pipe drained
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        rss_start = rss_kib(server.pid)
        warm_done = [0]
        _, warm_fail = asyncio.run(run_load(base, bodies, args.warmup, args.concurrency, expected, warm_done, 10**6))
        done = [0]
        sampler = RssSampler(server.pid, done)
        sampler.start()
        t0 = time.perf_counter()
        latencies, failures = asyncio.run(run_load(base, bodies, args.requests, args.concurrency, expected, done, 0))
        wall = time.perf_counter() - t0
        sampler.stop.set()
        sampler.join()
        rss_end = rss_kib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)

    mib = lambda kib: kib / 1024  # noqa: E731
    rss = [s[1] for s in sampler.samples]
    report = "\n".join([
        "## Serving: `weightspace serve` under load",
        "",
        f"Command: `{shlex.join(['python', 'benchmarks/serve_load.py', *sys.argv[1:]])}`",
        f"Machine: {machine()}",
        f"Generator: pca-gaussian on a digits-rotate zoo (8 tasks x 2 seeds, MLP 100-32-10, shared init), "
        f"support-probe condition; cached in {args.cache}",
        f"Load: {args.requests} POST /v1/generate, {args.concurrency} in flight, server with {args.threads} generation "
        f"threads on 127.0.0.1; each request a 100-example support set (~{len(json.dumps(bodies[0])) // 1000} kB of JSON), "
        f"n=1, best_of=4, its own seed; {args.warmup} warm-up requests first ({len(warm_fail)} failed)",
        "",
        "| metric | value |",
        "|---|---|",
        f"| failed requests | {len(failures)} of {args.requests} |",
        f"| latency p50 | {1000 * statistics.median(latencies):.1f} ms |",
        f"| latency p99 | {1000 * percentile(latencies, 99):.1f} ms |",
        f"| throughput | {args.requests / wall:.1f} requests/s ({wall:.1f} s wall) |",
        f"| server RSS after start-up | {mib(rss_start):.1f} MiB |",
        f"| server RSS after warm-up / half-way / end | {mib(sampler.at(0)):.1f} / {mib(sampler.at(args.requests // 2)):.1f} / "
        f"{mib(rss_end):.1f} MiB |",
        f"| server RSS min / max during the run | {mib(min(rss)):.1f} / {mib(max(rss)):.1f} MiB ({len(rss)} samples) |",
    ])
    if failures:
        report += "\n\nFirst failures:\n" + "\n".join(f"- {f}" for f in failures[:5])
    print(report)
    if args.write:
        args.write.write_text(report + "\n")


if __name__ == "__main__":
    main()
