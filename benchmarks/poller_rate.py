"""NVML poller: achieved sample rate at 50 Hz and 1 kHz (goal >= 99% of requested where the GPU's NVML
answers fast enough) and the poller's perturbation of benchmark latency (goal < 1%).

Run: python benchmarks/poller_rate.py [--seconds 10] [--backend pytorch] [--network squeezenet_v1.1]
Exit status: 0 measured; 3 could not run here (no NVIDIA GPU/driver or no nvidia-ml-py) - distinct from
success so that a script running it can tell that nothing was measured.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from harness.errors import HarnessError
from harness.measure import energy
from harness.measure.devices import identify
from harness.measure.nvml_poller import NvmlPoller
from harness.measure.sweep import open_session
from harness.measure.timer import TimingProtocol

CANNOT_RUN = 3


def rate(uuid: str, hz: float, seconds: float, columns: list[str] | None) -> None:
    with NvmlPoller(uuid, hz, columns) as poller:
        time.sleep(seconds)
        data = poller.stop()
    achieved = energy.achieved_rate(data["t"])
    print(f"  requested {hz:7.1f} Hz ({'all columns' if columns is None else 'power only'}): "
          f"achieved {achieved:8.1f} Hz = {100 * achieved / hz:5.1f}% (goal >= 99%), {len(data['t'])} samples")
    for column, _ in energy.POWER_SERIES:
        values = [v for v in data.get(column, []) if v is not None]
        if values:
            refresh = energy.update_interval(data["t"][: len(values)], values) or float("nan")
            print(f"    {column}: {energy.repeated_readings(values)} repeated readings, "
                  f"sensor refresh ~{refresh * 1e3:.1f} ms")


def perturbation(args: argparse.Namespace, uuid: str, hz: float) -> None:
    protocol = TimingProtocol(warmup_iters=0, warmup_s=0.0, min_iters=50, min_s=args.seconds / 4)
    with open_session(args.backend, args.network, 1, args.device) as session:
        TimingProtocol(warmup_iters=20, warmup_s=2.0, min_iters=0, min_s=0).run(session.forward)
        off, on = [], []
        for _ in range(3):  # alternate so drift affects both alike
            off.append(session.run_timed(protocol).median_s)
            with NvmlPoller(uuid, hz):
                on.append(session.run_timed(protocol).median_s)
    change = statistics.median(on) / statistics.median(off) - 1
    print(f"  {args.backend} {args.network} B=1 on {args.device}: median latency {statistics.median(off) * 1e3:.3f} ms "
          f"without poller, {statistics.median(on) * 1e3:.3f} ms with the {hz:.0f} Hz poller: "
          f"{100 * change:+.2f}% (goal < 1%)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda:0")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--backend", default="pytorch")
    p.add_argument("--network", default="squeezenet_v1.1")
    args = p.parse_args()
    try:
        uuid = identify(args.device).uuid
    except HarnessError as exc:
        print(f"poller_rate: cannot run here: {exc}")
        return CANNOT_RUN
    if uuid is None:
        print(f"poller_rate: cannot run here: {args.device} is not a GPU")
        return CANNOT_RUN
    print(f"achieved poll rate (idle GPU {args.device} = {uuid}):")
    for hz in (50.0, 1000.0):
        rate(uuid, hz, args.seconds, None)
    rate(uuid, 1000.0, args.seconds, [])  # power only: the cheapest sample
    print("perturbation of benchmark latency:")
    for hz in (50.0, 1000.0):
        try:
            perturbation(args, uuid, hz)
        except HarnessError as exc:
            print(f"  cannot measure perturbation: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
