"""Energy of one steady GPU load three ways: the energy counter, integrated instant power
(NVML_FI_DEV_POWER_INSTANT) and integrated averaged power (nvmlDeviceGetPowerUsage, a 1-second average
on Ampere and newer). Under a load that holds still, the three should agree within the sensor's accuracy
(+-5 W over the span); at the load's edges the averaged series lags by up to a second, which is why the
harness integrates the instant series and keeps the averaged one as a second figure.

All three are taken over ONE span: the times at which the poller read the counter, before and after the
load (set-up, allocation and warm-up products lie before it), so that a difference between them is the
sensors', never the spans'. The counter's own refresh interval (the poller samples it) bounds its edges.

Run: python benchmarks/energy_sources.py [--device cuda:0] [--seconds 10] [--size 8192]
Exit status: 0 measured; 3 could not run here (no NVIDIA GPU, no NVML or no CUDA build of torch).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from harness.errors import HarnessError
from harness.measure import energy
from harness.measure.devices import identify
from harness.measure.nvml_poller import NvmlPoller

CANNOT_RUN = 3


def prepared_operands(device: str, size: int) -> tuple[Any, Any]:
    """Two bf16 matrices on the GPU, multiplied three times (cuBLAS's set-up), before any span opens."""
    import torch

    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    return a, b


def steady_load(a: Any, b: Any, seconds: float) -> int:
    """bf16 matrix products back to back for ``seconds``: how many."""
    import torch

    start = time.time()
    count = 0
    while time.time() - start < seconds:
        for _ in range(10):
            a @ b
        torch.cuda.synchronize(a.device)
        count += 10
    return count


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda:0")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--idle", type=float, default=3.0)
    p.add_argument("--size", type=int, default=8192)
    args = p.parse_args()
    try:
        import torch

        uuid = identify(args.device).uuid
        if uuid is None or not torch.cuda.is_available():
            raise HarnessError(f"{args.device} is not a GPU torch can use")
    except (HarnessError, ImportError) as exc:
        print(f"energy_sources: cannot run here: {exc}")
        return CANNOT_RUN
    with NvmlPoller(uuid, 50.0) as poller:
        idle_start = time.time()
        time.sleep(args.idle)
        idle = energy.Span(idle_start, time.time())
        a, b = prepared_operands(args.device, args.size)
        start, counter_start = poller.energy_reading()
        products = steady_load(a, b, args.seconds)
        end, counter_end = poller.energy_reading()
        timeline = poller.stop()
        info = poller.device_info
    span = energy.Span(start, end)  # the counter's reads: the one span of all three sources
    counter = None if counter_start is None or counter_end is None else counter_end - counter_start
    figures, notes = energy.timeline_energy(timeline, idle, span, products, None, counter,
                                            info.get("power_usage_is_1s_average"))
    print(f"GPU {info.get('gpu_name')} ({uuid}), driver {info.get('driver')}, compute capability "
          f"{info.get('compute_capability')}; {products} bf16 {args.size}^3 products in {span.duration:.2f} s "
          f"(one span for all three sources: the counter's reads)")
    if figures is None:
        print("no power samples: " + "; ".join(notes))
        return 1
    print(f"  power series used: {figures.power_source}; idle {figures.idle_power_w:.1f} W, "
          f"average {figures.avg_power_w:.1f} W, peak {figures.peak_power_w:.1f} W")
    refresh = figures.counter_refresh_s
    print("  energy counter refresh: " + ("not seen (not sampled, or fewer than two changes)" if refresh is None
                                          else f"{refresh * 1e3:.1f} ms (median time between its changes)"))
    rows = [("energy counter", figures.energy_counter_j),
            (f"integrated {figures.power_source}", figures.energy_integrated_j),
            ("integrated averaged reading", figures.energy_integrated_averaged_j)]
    for name, value in rows:
        if value is None:
            print(f"  {name:<40} not available on this GPU")
        else:
            ratio = f"  ({value / counter:.4f} x counter)" if counter else ""
            print(f"  {name:<40} {value:10.2f} J{ratio}")
    print(f"  sensor accuracy bound over the span: +-{energy.NVML_POWER_ACCURACY_W * span.duration:.1f} J")
    print("  window: " + (f"too short for its energy to be evidence: {figures.window_too_short}"
                          if figures.window_too_short else "long enough for its energy to be evidence"))
    for note in notes:
        print(f"  note: {note}")
    return 0 if counter is not None or figures.energy_integrated_j else 1


if __name__ == "__main__":
    sys.exit(main())
