"""ONNX Runtime's profiler node events mapped back to the Caffe layers they came from (per-layer timing of
:class:`harness.backends.onnxruntime.OrtLayerTimer`).

ONNX Runtime runs an optimised graph, not the exported one: at ``opt-all`` on the CPU a Convolution with its
BatchNorm, Scale and ReLU is one ``Conv`` node in the NCHWc layout, named after the ReLU's output
(``/layer_modules.3/Relu_output_0_nchwc``); at ``opt-extended`` it is a ``FusedConv`` named after the
convolution. Its profiler writes one event per executed node and run (``<node>_kernel_time``, in
microseconds) inside a ``model_run`` event per run. So each node of the optimised graph (saved by the
session that runs the timed passes) is traced back to the layers of the prototxt:

- the exporter names every node ``/layer_modules.<i>/<Op>`` after the i-th layer module of the converted
  network (:class:`harness.convert.torch_module.CaffeNet`, one module per prototxt layer, in file order),
  and ONNX Runtime keeps those names, or the name of an original node or tensor with a suffix, in the nodes it
  derives from them;
- an optimised node therefore names the layers it ran through its own name (an original node's or tensor's,
  with what ONNX Runtime added around it stripped) or its outputs that are original tensors; it *finishes* a
  layer when that tensor is the layer's result (read by another layer), else it runs a step of it. It ran
  those layers and every layer of the prototxt's data flow upstream of them that is not upstream of the
  layers its inputs had finished: a Conv named after layer 3's output whose input is the network's input ran
  layers 0 to 3; a FusedGemm writing a ReLU's result after a Flatten of the fully connected layer ran both.

Layers joined by a node form one row (``conv1+conv1/bn+conv1/scale+relu1``), whose time is the sum of its
nodes' times. A node with no evidence (``ReorderInput``, a layout change ONNX Runtime adds) is a row of its
own, marked as added by ONNX Runtime; a layer no node ran (a Dropout, which the export leaves out) has no row.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.backends.base import EngineLayer
from harness.ir.graph import Graph

#: the exporter's scope of the i-th layer module in node names
MODULE_INDEX = re.compile(r"^/layer_modules\.(\d+)/")
PROFILE_SUFFIX = "_kernel_time"


def layer_writers(graph: Graph) -> list[set[int]]:
    """For each layer (by index), the layers whose output it reads: Caffe's data flow, in place included
    (a ReLU in place reads its convolution)."""
    writer: dict[str, int] = {}
    writers: list[set[int]] = []
    for layer in graph.layers:
        writers.append({writer[b] for b in layer.bottoms if b in writer})
        for top in layer.tops:
            writer[top] = len(writers) - 1
    return writers


def upstream(layers: Iterable[int], writers: list[set[int]]) -> set[int]:
    """``layers`` and every layer whose output flows into them."""
    seen, todo = set(layers), list(layers)
    while todo:
        for nxt in writers[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


class ExportedNames:
    """What the exported (unoptimised) ONNX graph says: node -> layer, tensor -> the layer that wrote it, and
    which tensors are a layer's result (read by another layer, or the network's output) rather than a step
    inside it (a fully connected layer's Flatten before its Gemm)."""

    def __init__(self, model: Any) -> None:
        self.node_layer: dict[str, int] = {}
        self.tensor_layer: dict[str, int] = {}
        readers: dict[str, set[int | None]] = {}
        for node in model.graph.node:
            match = MODULE_INDEX.search(node.name)
            layer = int(match.group(1)) if match else None
            for name in node.input:
                readers.setdefault(name, set()).add(layer)
            if layer is None:
                continue
            self.node_layer[node.name] = layer
            for output in node.output:
                self.tensor_layer[output] = layer
        outputs = {o.name for o in model.graph.output}
        self.results = {t for t, layer in self.tensor_layer.items()
                        if t in outputs or not readers.get(t) or readers[t] - {layer}}
        self.node_results = {node.name for node in model.graph.node if set(node.output) & self.results}

    @property
    def exported_layers(self) -> set[int]:
        """Layers the export has nodes for (an identity at inference, a Dropout, has none)."""
        return set(self.node_layer.values())

    def of_name(self, name: str) -> tuple[int, bool] | None:
        """The layer an optimised node's name comes from, and whether that name is of the layer's result:
        an original node's or tensor's name, possibly with what ONNX Runtime put before it (``fused ``) or
        after it (``_nchwc``, ``_token_3``)."""
        candidate = name.rpartition(" ")[2]
        while candidate:
            if candidate in self.node_layer:
                return self.node_layer[candidate], candidate in self.node_results
            if candidate in self.tensor_layer:
                return self.tensor_layer[candidate], candidate in self.results
            candidate = candidate.rpartition("_")[0]
        return None

    def evidence(self, node: Any) -> tuple[set[int], set[int]]:
        """The layers an optimised node finishes (it produces their result) and those it works on without
        finishing them, by its name and its original outputs."""
        finished, partial = set(), set()
        named = self.of_name(node.name)
        if named is not None:
            (finished if named[1] else partial).add(named[0])
        for output in node.output:
            if output in self.tensor_layer:
                (finished if output in self.results else partial).add(self.tensor_layer[output])
        return finished, partial - finished


def node_units(graph: Graph, exported: Any, optimized: Any) -> tuple[list[EngineLayer], dict[str, int]]:
    """The rows of the optimised graph's nodes (in execution order of their first node), and node -> row.

    A node finishes the layers whose results it produces and works on those whose steps it runs (both named by
    its name or original outputs); it ran those and every exported layer upstream of them that is not upstream
    of the layers its inputs had finished. A node finishing none (a layout change, a Flatten) passes its
    inputs' finished layers on. Nodes that ran a layer in common are one row."""
    names = ExportedNames(exported)
    writers = layer_writers(graph)
    exported_layers = names.exported_layers
    producer: dict[str, Any] = {}
    done: dict[str, set[int]] = {}  # node -> the layers finished once its outputs exist
    covered: dict[str, set[int]] = {}
    for node in optimized.graph.node:  # ONNX keeps nodes in topological order
        preds = [producer[t] for t in node.input if t in producer]
        finished, partial = names.evidence(node)
        before = set().union(*(done[p.name] for p in preds)) if preds else set()
        done[node.name] = finished or before
        work = finished | partial
        ran = (upstream(work, writers) - upstream(before, writers)) & exported_layers if work else set()
        covered[node.name] = work | ran
        for output in node.output:
            producer[output] = node
    parent = list(range(len(graph.layers)))  # union-find over layers: one row per connected group

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for layers in covered.values():
        first, *rest = sorted(layers) or [0]
        for other in rest:
            parent[root(other)] = root(first)
    rows: dict[Any, list[Any]] = {}  # group key -> nodes, in the optimised graph's (execution) order
    for node in optimized.graph.node:
        layers = covered[node.name]
        rows.setdefault(root(min(layers)) if layers else ("added", node.name), []).append(node)
    units, row_of = [], {}
    for key, nodes in rows.items():
        ops = tuple(dict.fromkeys(n.op_type for n in nodes))
        if isinstance(key, tuple):
            unit = EngineLayer(nodes[0].name, (), ops, "added by onnxruntime (no prototxt layer)")
        else:
            members = sorted(set().union(*(covered[n.name] for n in nodes)))
            layers = tuple(graph.layers[i].name for i in members)
            note = "fused by onnxruntime" if len(layers) > 1 else ""
            unit = EngineLayer("+".join(layers), layers, ops, note)
        for node in nodes:
            row_of[node.name] = len(units)
        units.append(unit)
    return units, row_of


def profile_passes(profile: list[dict[str, Any]], row_of: dict[str, int], rows: int) -> list[list[float]]:
    """Seconds per row of every run in an ONNX Runtime profile: its node events summed per row, each run
    being the events inside one ``model_run``. A node event the rows do not know is an error."""
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in profile
                  if e.get("cat") == "Session" and e.get("name") == "model_run")
    starts = [start for start, _ in runs]
    passes = [[0.0] * rows for _ in runs]
    for event in profile:
        if event.get("cat") != "Node" or not event.get("name", "").endswith(PROFILE_SUFFIX):
            continue
        node = event["name"].removesuffix(PROFILE_SUFFIX)
        if node not in row_of:
            raise ValueError(f"the profile names node '{node}', which is not in the optimised graph")
        run = bisect.bisect_right(starts, event["ts"]) - 1
        if run < 0 or event["ts"] > runs[run][1]:
            continue  # outside every run: not a forward pass's
        passes[run][row_of[node]] += event["dur"] / 1e6
    return passes


def read_profile(path: str | Path) -> list[dict[str, Any]]:
    return json.loads(Path(path).read_text(encoding="utf-8"))
