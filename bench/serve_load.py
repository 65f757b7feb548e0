#!/usr/bin/env python3
"""Load on `boneage serve` over loopback, against `boneage assess` in one process.

    python3 bench/serve_load.py BONEAGE_BINARY [--films 40] [--clients 8,32] [--per-client 25]

Makes FILMS phantom films, then in one run:
  1. the reference: `boneage assess DIR --out CSV` over the films (one process, models
     loaded once): films per second;
  2. for each CLIENTS count: starts `boneage serve` afresh (fresh audit store), waits
     for /readyz, and lets that many clients each upload PER_CLIENT films at once
     (cycling through the films), retrying a 503 after its Retry-After. Prints films
     per second, p50 / p99 latency of the answered requests, the 503s, and the
     server's peak resident memory (VmHWM), and the ratio to the reference.

Only the standard library; timings vary ±25 % between runs on this machine, so
compare the ratios printed in one run.
"""
import argparse
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def multipart(film_bytes, sex):
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"sex\"\r\n\r\n{sex}\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"f.png\"\r\n"
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    return boundary, head + film_bytes + f"\r\n--{boundary}--\r\n".encode()


def peak_rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def percentile(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))
    return xs[k]


def run_load(binary, films, clients, per_client, workdir):
    port = free_port()
    db = os.path.join(workdir, f"audit-{clients}.sqlite")
    server = subprocess.Popen(
        [binary, "serve", "--addr", f"127.0.0.1:{port}", "--db", db],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except Exception:
                if server.poll() is not None:
                    sys.exit("boneage serve exited: " + server.stderr.read())
                time.sleep(0.2)
        bodies = [multipart(f, s) for f, s in films]
        latencies, busy, statuses = [], [0], {}
        lock = threading.Lock()

        def client(c):
            for i in range(per_client):
                boundary, body = bodies[(c * per_client + i) % len(bodies)]
                t = time.perf_counter()
                while True:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
                    conn.request("POST", "/v1/assessments", body=body, headers={
                        "Content-Type": f"multipart/form-data; boundary={boundary}"})
                    r = conn.getresponse()
                    r.read()
                    conn.close()
                    if r.status == 503:
                        with lock:
                            busy[0] += 1
                        time.sleep(float(r.getheader("Retry-After", "1")))
                        continue
                    break
                with lock:
                    latencies.append(time.perf_counter() - t)
                    statuses[r.status] = statuses.get(r.status, 0) + 1

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        rss = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait()
    n = clients * per_client
    return {
        "clients": clients, "films": n, "wall": wall, "fps": n / wall,
        "p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
        "busy": busy[0], "statuses": statuses, "rss": rss,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("--films", type=int, default=40)
    ap.add_argument("--clients", default="8,32")
    ap.add_argument("--per-client", type=int, default=25)
    a = ap.parse_args()
    binary = os.path.realpath(a.binary)
    with tempfile.TemporaryDirectory() as work:
        ph = os.path.join(work, "ph")
        subprocess.run([binary, "phantom", "--n", str(a.films), "--seed", "5", "--out", ph],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        names = sorted(f for f in os.listdir(ph) if f.endswith(".png"))
        sexes = {}
        with open(os.path.join(ph, "labels.csv")) as f:
            next(f)
            for line in f:
                cells = line.strip().split(",")
                sexes[cells[0]] = "M" if cells[2].lower() in ("true", "1") else "F"
        films = [(open(os.path.join(ph, n), "rb").read(), sexes.get(n[:-4], "F")) for n in names]

        t = time.perf_counter()
        subprocess.run([binary, "assess", ph, "--out", os.path.join(work, "cli.csv")],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cli = len(films) / (time.perf_counter() - t)
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        print(f"machine: {os.cpu_count()} cores, {cpu}")
        print(f"reference: boneage assess DIR (one process, {len(films)} phantom films, models loaded once): "
              f"{cli:.2f} films/s")
        print("| clients | films | films/s | vs CLI | p50 s | p99 s | 503s (retried) | statuses | server peak RSS MB |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for c in [int(x) for x in a.clients.split(",")]:
            r = run_load(binary, films, c, a.per_client, work)
            print(f"| {c} | {r['films']} | {r['fps']:.2f} | {r['fps'] / cli:.2f} | {r['p50']:.2f} | "
                  f"{r['p99']:.2f} | {r['busy']} | {r['statuses']} | {r['rss']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
