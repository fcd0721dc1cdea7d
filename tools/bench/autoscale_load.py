#!/usr/bin/env python3
"""The load, fault and sampling side of tools/bench/autoscale.sh (run by it, not by hand).

Sends GET / to phoenix at a rate that follows PROFILE (requests per second, one step per
STEP seconds), open loop: each request is due at its time whatever the others do, and is sent
by one of a pool of workers on a kept-alive connection. Every FAULT_EVERY seconds it crashes
one instance through the fault listener (a route to the same app without the /crash deny
rule). Every second it records the requests that ended that second (2xx, and everything
else as errors) and the app's instances from GET /apps. Writes a CSV and prints a summary as
`key=value` lines."""

import argparse
import http.client
import json
import queue
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--fault-port", type=int, required=True)
    ap.add_argument("--admin-port", type=int, required=True)
    ap.add_argument("--profile", required=True, help="comma-separated rps per step")
    ap.add_argument("--step", type=float, default=10)
    ap.add_argument("--fault-every", type=float, default=8)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--workers", type=int, default=64)
    args = ap.parse_args()
    profile = [float(x) for x in args.profile.split(",")]
    duration = len(profile) * args.step

    lock = threading.Lock()
    ok = {}      # second -> count
    errors = {}  # second -> count
    error_kinds = {}
    jobs = queue.Queue()
    start = time.monotonic()

    def record(table, key=None):
        second = int(time.monotonic() - start)
        with lock:
            table[second] = table.get(second, 0) + 1
            if key is not None:
                error_kinds[key] = error_kinds.get(key, 0) + 1

    def worker():
        conn = None
        while True:
            job = jobs.get()
            if job is None:
                return
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=20)
                conn.request("GET", "/")
                resp = conn.getresponse()
                resp.read()
                if 200 <= resp.status < 300:
                    record(ok)
                else:
                    record(errors, f"status {resp.status}")
                if resp.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                record(errors, type(e).__name__)
                if conn is not None:
                    conn.close()
                conn = None

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(args.workers)]
    for w in workers:
        w.start()

    def admin(path):
        c = http.client.HTTPConnection("127.0.0.1", args.admin_port, timeout=5)
        try:
            c.request("GET", path)
            return c.getresponse().read().decode()
        finally:
            c.close()

    samples = []  # (second, target rps, ready, total, restarts, rps seen by phoenix)
    crashes = []
    stop = threading.Event()

    def sampler():
        next_fault = args.fault_every
        second = 0
        while not stop.is_set():
            t = time.monotonic() - start
            if t >= second + 1:
                try:
                    app = json.loads(admin("/apps"))["apps"][0]
                    ready = sum(1 for i in app["instances"] if i["state"] == "READY")
                    samples.append((second, profile[min(int(second // args.step), len(profile) - 1)],
                                    ready, len(app["instances"]), app["restarts"], app["rps"]))
                except (OSError, ValueError, KeyError, IndexError):
                    pass
                second += 1
            if t >= next_fault and t < duration - args.step:
                next_fault += args.fault_every
                try:
                    c = http.client.HTTPConnection("127.0.0.1", args.fault_port, timeout=5)
                    c.request("GET", "/crash")
                    c.getresponse().read()
                except (OSError, http.client.HTTPException):
                    pass  # The instance dies without answering: that is the point.
                crashes.append(round(t, 2))
            time.sleep(0.05)

    s = threading.Thread(target=sampler, daemon=True)
    s.start()

    # The schedule: in each step, requests evenly spaced at that step's rate.
    sent = 0
    t = 0.0
    while t < duration:
        rate = profile[int(t // args.step)]
        due = start + t
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        jobs.put(1)
        sent += 1
        t += 1.0 / rate
    for _ in workers:
        jobs.put(None)
    for w in workers:
        w.join(timeout=30)
    time.sleep(1.5)
    stop.set()
    s.join()

    with open(args.csv, "w") as f:
        f.write("second,target_rps,ok_rps,error_rps,instances_ready,instances_total,restarts,"
                "phoenix_rps\n")
        for second, target, ready, total, restarts, rps in samples:
            f.write(f"{second},{target},{ok.get(second, 0)},{errors.get(second, 0)},{ready},"
                    f"{total},{restarts},{rps:.1f}\n")
    total_ok = sum(ok.values())
    total_err = sum(errors.values())
    print(f"sent={sent}")
    print(f"ok={total_ok}")
    print(f"errors={total_err}")
    print(f"success_pct={100.0 * total_ok / max(1, total_ok + total_err):.3f}")
    print(f"error_kinds={json.dumps(error_kinds)}")
    print(f"crashes_injected={len(crashes)}")
    print(f"max_ready={max((x[2] for x in samples), default=0)}")
    print(f"final_ready={samples[-1][2] if samples else 0}")


if __name__ == "__main__":
    main()
