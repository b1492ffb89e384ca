"""Kernel attribution: profiler outputs -> one kernel-event table -> families -> Table III / Table V.

- :mod:`harness.kernels.events`: the table (:class:`KernelEvent`, :class:`KernelSummary`, :class:`KernelTrace`).
- :mod:`harness.kernels.parsers`: one module per profiler format, and :func:`load_trace` (auto-detection).
- :mod:`harness.kernels.taxonomy`: THE kernel-name -> family rules.
- :mod:`harness.kernels.attribution`: % of GPU time per family, per network and per layer.
- :mod:`harness.kernels.metrics`: Table V (occupancy, efficiencies, utilisations, stall shares).
- :mod:`harness.kernels.caffe_blas`: the CPU counterpart (the BLAS calls a Caffe forward makes).
"""
