"""Per-layer time on every engine, joined with the analyzer's per-layer MACs, bytes and arithmetic intensity.

The paper asks why compact networks with far fewer MACs are not proportionally faster. ``harness layers``
answers it layer by layer: every engine times its own layers by its own mechanism (Caffe layer by layer as
``caffe time`` does, PyTorch a timer per module, ONNX Runtime's profiler, OpenCV's ``getPerfProfile``), in
the one worker per configuration (:mod:`harness.worker`, job kind ``layers``) that also times the plain
forward, and each row the engine ran is joined with what the analyzer says its layers cost.

- :mod:`.record`: the layer-profile record (never mixed with timing records) and its typed schema;
- :mod:`.store`: its append-only files in a results directory, merged by the results store's one rule;
- :mod:`.join`: rows joined with the analysis; per-row rates, roofline and per-layer-type summaries;
- :mod:`.measure`: the measurement in the worker (plain and instrumented passes interleaved);
- :mod:`.run`: the parent side, one fresh worker per configuration, resumable.
"""
