#!/usr/bin/env python3
"""netpulse probe benchmark, run by hand (not in CI), as root, from the repository root:

    cargo build --release && sudo python3 bench/probe_bench.py [--quick]

Prints netpulse's figures next to the reference tool's, measured in the same run:
  1. CPU time per ICMP probe: netpulse vs fping, same targets and rate
     (100 000 probes over 100 loopback addresses at 10 000/s).
  2. TCP connect probes per CPU-second: netpulse vs a plain Python loop that opens one socket
     per probe (what the seed connection monitor does), against the same local listener.
  3. RTT accuracy on the lab (../shared/lab/netlab.sh up 20 0 0): mean RTT error vs the set
     40 ms round trip, netpulse and fping side by side.
CPU time is user + system of the child, from wait4(). Traffic stays on loopback and in the
lab's own namespaces.
"""
import json, os, re, resource, socket, subprocess, sys, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETPULSE = os.path.join(ROOT, "target", "release", "netpulse")
LAB = os.path.join(ROOT, "..", "shared", "lab", "netlab.sh")
QUICK = "--quick" in sys.argv


def run(cmd, env=None):
    """Runs cmd; returns (wall s, cpu s, max RSS KiB, stdout, stderr)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = p.communicate()
    wall = time.monotonic() - t0
    # wait4 already reaped it inside communicate(); per-child usage comes from RUSAGE_CHILDREN deltas
    return wall, out.decode(), err.decode(), p.returncode


def cpu_of(cmd, env=None):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, out, err, rc = run(cmd, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out, err, rc


def row(name, *cols):
    print(f"  {name:<34}" + "".join(f"{c:>18}" for c in cols))


def bench_icmp():
    targets = 20 if QUICK else 100
    count = 200 if QUICK else 1000
    addrs = [f"127.0.0.{i}" for i in range(1, targets + 1)]
    total = targets * count
    rate = targets * 100  # each target every 10 ms
    print(f"\n1. ICMP: {total} probes over {targets} loopback addresses at {rate}/s (each every 10 ms)")
    np_wall, np_cpu, out, err, rc = cpu_of([NETPULSE, "probe", "-q", "-c", str(count), "-i", "10ms", *addrs])
    np_recv = sum(int(m) for m in re.findall(r"transmitted, (\d+) received", out))
    # fping: -p per-target period, -i gap between any two sends: the same 10 000/s, spread evenly
    gap_ms = 10.0 / targets
    fp_wall, fp_cpu, out, err, rc = cpu_of(
        ["fping", "-q", "-c", str(count), "-p", "10", "-i", f"{gap_ms:g}", "-t", "1000", *addrs])
    fp_recv = sum(int(m) for m in re.findall(r"xmt/rcv/%loss = \d+/(\d+)/", err))
    row("", "netpulse", "fping")
    row("replies received", np_recv, fp_recv)
    row("wall time (s)", f"{np_wall:.2f}", f"{fp_wall:.2f}")
    row("CPU time (s)", f"{np_cpu:.3f}", f"{fp_cpu:.3f}")
    row("CPU per probe (µs)", f"{np_cpu / total * 1e6:.2f}", f"{fp_cpu / total * 1e6:.2f}")
    print(f"  ratio netpulse/fping CPU per probe: {np_cpu / max(fp_cpu, 1e-9):.2f}  (goal ≤ 0.5)")


def bench_tcp():
    n = 5000 if QUICK else 20000
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4096)
    port = srv.getsockname()[1]
    stop = False

    def accept_loop():
        while not stop:
            try:
                c, _ = srv.accept()
                c.close()
            except OSError:
                return
    th = threading.Thread(target=accept_loop, daemon=True)
    th.start()
    targets = 5
    count = n // targets
    print(f"\n2. TCP connect: {n} probes to 127.0.0.1:{port} (accepting listener)")
    np_wall, np_cpu, out, err, rc = cpu_of(
        [NETPULSE, "probe", "-q", "-c", str(count), "-i", "1ms", *[f"127.0.0.1:{port}"] * targets])
    np_ok = sum(int(m) for m in re.findall(r"transmitted, (\d+) received", out))
    loop = (
        "import socket,time\n"
        f"for i in range({n}):\n"
        "    t=time.perf_counter()\n"
        f"    s=socket.create_connection(('127.0.0.1',{port}),timeout=1)\n"
        "    rtt=time.perf_counter()-t\n"
        "    s.close()\n")
    py_wall, py_cpu, out, err, rc = cpu_of([sys.executable, "-c", loop])
    # The seed connection monitor sleeps between probes: the same loop, paced at netpulse's rate.
    rate = targets * 1000
    paced = (
        "import socket,time\n"
        "t0=time.monotonic()\n"
        f"for i in range({n}):\n"
        f"    d=t0+i/{rate}-time.monotonic()\n"
        "    if d>0: time.sleep(d)\n"
        "    t=time.perf_counter()\n"
        f"    s=socket.create_connection(('127.0.0.1',{port}),timeout=1)\n"
        "    rtt=time.perf_counter()-t\n"
        "    s.close()\n")
    pp_wall, pp_cpu, out, err, prc = cpu_of([sys.executable, "-c", paced])
    stop = True
    srv.close()
    row("", "netpulse", "python flat-out", f"python {rate}/s")
    row("connects completed", np_ok, n if rc == 0 else f"rc={rc}", n if prc == 0 else f"rc={prc}")
    row("wall time (s)", f"{np_wall:.2f}", f"{py_wall:.2f}", f"{pp_wall:.2f}")
    row("CPU time (s)", f"{np_cpu:.3f}", f"{py_cpu:.3f}", f"{pp_cpu:.3f}")
    np_rate, py_rate, pp_rate = (n / max(c, 1e-9) for c in (np_cpu, py_cpu, pp_cpu))
    row("probes per CPU-second", f"{np_rate:,.0f}", f"{py_rate:,.0f}", f"{pp_rate:,.0f}")
    print(f"  ratio netpulse/python: {np_rate / py_rate:.1f}x flat-out, {np_rate / pp_rate:.1f}x paced"
          "  (goal ≥ 20x)")


def bench_lab():
    n = 100 if QUICK else 500
    env = dict(os.environ, NETLAB_PREFIX="npbch", NETLAB_NET="97")
    print(f"\n3. RTT accuracy on the lab: 20 ms each way (40 ms round trip), {n} probes at 10 ms")
    subprocess.run(["bash", LAB, "up", "20", "0", "0"], env=env, check=True)
    try:
        ns = ["ip", "netns", "exec", "npbchA"]
        subprocess.run(ns + [NETPULSE, "probe", "-q", "-c", "3", "-i", "100ms", "10.97.0.2"],
                       capture_output=True)
        _, _, out, _, _ = cpu_of(ns + [NETPULSE, "probe", "-q", "--json", "-c", str(n), "-i", "10ms", "10.97.0.2"])
        s = [json.loads(l) for l in out.splitlines() if '"summary"' in l][0]
        np_avg, np_min = s["rtt_ms"]["avg"], s["rtt_ms"]["min"]
        # fping's timeout defaults to the period with -c (10 ms < 40 ms RTT): give it 1 s, and
        # take its per-probe values (-C) for the mean, as its summary rounds to 0.1 ms.
        _, _, out, err, _ = cpu_of(ns + ["fping", "-q", "-C", str(n), "-p", "10", "-t", "1000", "10.97.0.2"])
        vals = [float(v) for v in err.split(":", 1)[1].split() if v != "-"]
        fp_min, fp_avg = min(vals), sum(vals) / len(vals)
    finally:
        subprocess.run(["bash", LAB, "down"], env=env)
    try:
        with open("/tmp/netlab.npbch.wire.json") as f:
            wire = json.load(f)
    except OSError:
        wire = {}
    row("", "netpulse", "fping")
    row("mean RTT (ms)", f"{np_avg:.3f}", f"{fp_avg:.3f}")
    row("min RTT (ms)", f"{np_min:.3f}", f"{fp_min:.3f}")
    row("mean error vs 40 ms (ms)", f"{np_avg - 40:+.3f}", f"{fp_avg - 40:+.3f}")
    print("  (the Python delay line itself adds ~0.2-0.3 ms per round trip to both;"
          f" wire counters: {wire.get('fwd', '?')} frames forwarded)")


if __name__ == "__main__":
    if not os.path.exists(NETPULSE):
        sys.exit("build first: cargo build --release")
    print(f"netpulse probe benchmark  ({os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')})")
    bench_icmp()
    bench_tcp()
    bench_lab()
