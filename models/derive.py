"""Derive a faster, numerically equivalent copy of a PP-OCRv4 model.

The PP-OCRv4 recogniser (``ch_PP-OCRv4_rec_infer.onnx``) and text-line
detector (``ch_PP-OCRv4_det_infer.onnx``, whose weights are all Constant
nodes) were exported with
every HardSwish spelt out as Add/Clip/Mul/Div and with a learnable scalar
affine (Mul then Add) around each activation. ONNX Runtime fuses none of it,
so about a third of the model's time goes to elementwise ops. This module
rewrites the graph; the output is the same up to float32 rounding (max abs
difference ~2e-6 on the softmax) and the model runs ~20 % faster:

1. ``Conv -> Mul(s) -> Add(b)`` (scalar constants, each tensor with one
   consumer) becomes one Conv with weights ``W*s`` and bias ``B*s + b``.
2. ``x -> Add(3) -> Clip(0, 6) -> Mul(x, .) -> Div(6)`` becomes
   ``Mul(x, HardSigmoid(x, alpha=1/6, beta=0.5))`` (HardSigmoid exists since
   opset 6; the model's opset is kept, its Squeeze semantics depend on it).
3. ``Mul(s) -> Add(b)`` whose only consumer is a Conv with a 1x1 kernel,
   group 1 and no padding is folded into that Conv: weights ``W*s``, bias
   ``B + b*sum(W over the input channels)``. Not into padded or larger
   kernels: their zero padding would see ``b`` where the original saw 0.

4. Constant nodes (the weights) become graph initializers: ONNX Runtime
   would convert them itself while loading, holding both copies (about 5 MB
   more resident memory for the life of the daemon).

Everything else (nodes, names, opset, metadata such as the recogniser's
``character`` list) is kept. The result is reproducible byte for byte: the
weight arithmetic is done in float64 with exactly rounded sums
(:func:`math.fsum`) and cast to float32 once, and nodes are built in a fixed
order, so its SHA-256 depends only on the source and on the onnx/protobuf
versions that serialise it (``models/manifest.toml`` records the hash and the
onnx version it was made with; ``models/fetch.py`` checks it).

Needs the ``onnx`` package (set-up only; the daemon never imports this)::

    python models/derive.py SOURCE.onnx OUTPUT.onnx
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

#: Name and version of the rewrite; models/manifest.toml names them in each
#: ``[[derived]]`` entry. Bump the version on any change to the output bytes.
RECIPE = "fuse-affine-hardswish"
RECIPE_VERSION = 2

#: Metadata key added to the derived model, value "RECIPE RECIPE_VERSION".
RECIPE_KEY = "edged_recipe"

_GRAPH_OUTPUT = -1  # consumer index standing for "read outside this graph's nodes"


@dataclass
class Stats:
    """How many of each rewrite were applied."""

    conv_affine: int = 0  # rule 1: Conv -> Mul -> Add folded into the Conv
    hardswish: int = 0  # rule 2: Add/Clip/Mul/Div -> HardSigmoid + Mul
    affine_conv: int = 0  # rule 3: Mul -> Add folded into the following 1x1 Conv
    initializers: int = 0  # rule 4: Constant nodes moved to the graph's initializers
    nodes_before: int = 0
    nodes_after: int = 0

    def __str__(self) -> str:
        return (
            f"{self.conv_affine} conv+affine, {self.hardswish} hardswish, "
            f"{self.affine_conv} affine+1x1 conv folded, "
            f"{self.initializers} constants made initializers; "
            f"nodes {self.nodes_before} -> {self.nodes_after}"
        )


@dataclass
class _Fold:
    """A Conv whose weights change: float64 until the single cast at the end."""

    data: str  # the Conv's data input after the rewrite
    output: str  # the Conv's output after the rewrite
    weight: np.ndarray  # float64 [O, I/group, kH, kW]
    bias: np.ndarray  # float64 [O]


class _Graph:
    """Read-only index of a graph: constants, producers and consumers."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.nodes = list(graph.node)
        self.consts: dict[str, np.ndarray] = {}
        inputs = {i.name for i in graph.input}
        for init in graph.initializer:
            if init.name not in inputs:  # an initializer that is an input can be overridden
                self.consts[init.name] = numpy_helper.to_array(init)
        for node in self.nodes:
            if (
                node.op_type == "Constant"
                and len(node.attribute) == 1
                and node.attribute[0].name == "value"
            ):
                self.consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self.producer: dict[str, int] = {}
        self.consumers: dict[str, list[int]] = {}
        for index, node in enumerate(self.nodes):
            for name in node.output:
                self.producer[name] = index
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(index)
        # Graph outputs and names read inside subgraphs (If, Loop) are kept as they are.
        for name in [o.name for o in graph.output] + _subgraph_reads(self.nodes):
            self.consumers.setdefault(name, []).append(_GRAPH_OUTPUT)
        self.names = {n.name for n in self.nodes} | set(self.consts)
        self.names |= set(self.producer) | set(self.consumers)
        self.names |= {i.name for i in graph.input}

    def scalar(self, name: str) -> float | None:
        """The value of a one-element float32 constant of rank <= 1, else None.

        Rank <= 1 keeps broadcasting from changing the other operand's shape,
        so removing the op cannot change a tensor's shape.
        """
        value = self.consts.get(name)
        if value is None or value.dtype != np.float32 or value.size != 1 or value.ndim > 1:
            return None
        return float(value.reshape(()))

    def sole_consumer(self, name: str, op_type: str) -> int | None:
        """Index of the only node reading ``name`` if it is an ``op_type``, else None."""
        users = self.consumers.get(name, [])
        if len(users) != 1 or users[0] == _GRAPH_OUTPUT:
            return None
        return users[0] if self.nodes[users[0]].op_type == op_type else None

    def split_scalar(self, index: int, commutative: bool = True) -> tuple[str, float] | None:
        """(tensor, scalar) of a binary node with exactly one scalar-constant operand."""
        node = self.nodes[index]
        if len(node.input) != 2 or node.attribute:
            return None
        a, b = node.input
        sa, sb = self.scalar(a), self.scalar(b)
        if sb is not None and sa is None:
            return a, sb
        if commutative and sa is not None and sb is None:
            return b, sa
        return None

    def fresh(self, base: str) -> str:
        """A tensor/node name not used yet (deterministic: base, base.1, base.2...)."""
        name, n = base, 0
        while name in self.names:
            n += 1
            name = f"{base}.{n}"
        self.names.add(name)
        return name


def _subgraph_reads(nodes: list[onnx.NodeProto]) -> list[str]:
    """Every tensor name read by a node of a subgraph of ``nodes``, at any depth."""
    names: list[str] = []
    for node in nodes:
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                names += [i for n in sub.node for i in n.input if i]
                names += [o.name for o in sub.output]
                names += _subgraph_reads(list(sub.node))
    return names


def _attr(node: onnx.NodeProto, name: str, default: object) -> object:
    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def _conv_weights(g: _Graph, index: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Float64 (W, B) of a Conv whose weight (and bias, if any) are constants."""
    node = g.nodes[index]
    if len(node.input) not in (2, 3):
        return None
    weight = g.consts.get(node.input[1])
    if weight is None or weight.dtype != np.float32 or weight.ndim != 4:
        return None
    if len(node.input) == 3 and node.input[2]:
        bias = g.consts.get(node.input[2])
        if bias is None or bias.dtype != np.float32 or bias.shape != (weight.shape[0],):
            return None
        bias64 = bias.astype(np.float64)
    else:
        bias64 = np.zeros(weight.shape[0], dtype=np.float64)
    return weight.astype(np.float64), bias64


def _is_plain_1x1(g: _Graph, index: int, weight: np.ndarray) -> bool:
    """1x1 kernel, group 1, no padding: an input offset maps exactly onto the bias."""
    node = g.nodes[index]
    kernel = list(_attr(node, "kernel_shape", weight.shape[2:]))
    pads = list(_attr(node, "pads", [0, 0, 0, 0]))
    auto_pad = _attr(node, "auto_pad", b"NOTSET")
    if isinstance(auto_pad, bytes):
        auto_pad = auto_pad.decode()
    return (
        kernel == [1, 1]
        and list(weight.shape[2:]) == [1, 1]
        and _attr(node, "group", 1) == 1
        and not any(pads)
        and auto_pad in ("NOTSET", "VALID")
    )


def _find_conv_affine(g: _Graph, folds: dict[int, _Fold], removed: set[int]) -> int:
    """Rule 1: Conv -> Mul(s) -> Add(b) into the Conv (W*s, B*s + b)."""
    count = 0
    for index, node in enumerate(g.nodes):
        if node.op_type != "Conv":
            continue
        weights = _conv_weights(g, index)
        if weights is None:
            continue
        mul = g.sole_consumer(node.output[0], "Mul")
        if mul is None or mul in removed:
            continue
        ms = g.split_scalar(mul)
        if ms is None or ms[0] != node.output[0]:
            continue
        add = g.sole_consumer(g.nodes[mul].output[0], "Add")
        if add is None or add in removed:
            continue
        ab = g.split_scalar(add)
        if ab is None or ab[0] != g.nodes[mul].output[0]:
            continue
        scale, shift = ms[1], ab[1]
        weight, bias = weights
        folds[index] = _Fold(
            data=node.input[0],
            output=g.nodes[add].output[0],
            weight=weight * scale,
            bias=bias * scale + shift,
        )
        removed.update((mul, add))
        count += 1
    return count


def _find_hardswish(g: _Graph, removed: set[int]) -> dict[int, str]:
    """Rule 2: {index of the Div: x} for each spelt-out HardSwish of x."""
    found: dict[int, str] = {}
    for index, node in enumerate(g.nodes):
        if node.op_type != "Add" or index in removed:
            continue
        xa = g.split_scalar(index)
        if xa is None or xa[1] != 3.0:
            continue
        x = xa[0]
        clip = g.sole_consumer(node.output[0], "Clip")
        if clip is None or clip in removed:
            continue
        cn = g.nodes[clip]
        if (
            len(cn.input) != 3
            or cn.attribute
            or cn.input[0] != node.output[0]
            or g.scalar(cn.input[1]) != 0.0
            or g.scalar(cn.input[2]) != 6.0
        ):
            continue
        mul = g.sole_consumer(cn.output[0], "Mul")
        if mul is None or mul in removed or sorted(g.nodes[mul].input) != sorted([x, cn.output[0]]):
            continue
        div = g.sole_consumer(g.nodes[mul].output[0], "Div")
        if div is None or div in removed:
            continue
        dn = g.nodes[div]
        if dn.input[0] != g.nodes[mul].output[0] or g.scalar(dn.input[1]) != 6.0:
            continue
        found[div] = x
        removed.update((index, clip, mul))  # the Div is replaced where it stood
    return found


def _find_affine_conv(g: _Graph, folds: dict[int, _Fold], removed: set[int]) -> int:
    """Rule 3: Mul(s) -> Add(b) -> 1x1 Conv into the Conv (W*s, B + b*sum W)."""
    count = 0
    for index, node in enumerate(g.nodes):
        if node.op_type != "Conv":
            continue
        fold = folds.get(index)
        if fold is None:
            weights = _conv_weights(g, index)
            if weights is None:
                continue
            fold = _Fold(node.input[0], node.output[0], *weights)
        if not _is_plain_1x1(g, index, fold.weight):
            continue
        add = g.producer.get(node.input[0])
        if add is None or add in removed or g.nodes[add].op_type != "Add":
            continue
        if g.consumers.get(node.input[0]) != [index]:
            continue
        ab = g.split_scalar(add)
        if ab is None:
            continue
        mul = g.producer.get(ab[0])
        if mul is None or mul in removed or g.nodes[mul].op_type != "Mul":
            continue
        if g.consumers.get(ab[0]) != [add]:
            continue
        ms = g.split_scalar(mul)
        if ms is None:
            continue
        x, scale = ms
        shift = ab[1]
        # Sum over the input channels, exactly rounded: the same on every CPU.
        sums = np.array([math.fsum(row.ravel().tolist()) for row in fold.weight])
        fold.bias = fold.bias + shift * sums
        fold.weight = fold.weight * scale
        fold.data = x
        folds[index] = fold
        removed.update((mul, add))
        count += 1
    return count


def _constant(name: str, value: np.ndarray) -> onnx.NodeProto:
    tensor = numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name)
    return helper.make_node("Constant", [], [name], name=name, value=tensor)


def derive_model(source: onnx.ModelProto) -> tuple[onnx.ModelProto, Stats]:
    """The rewritten copy of ``source`` (left untouched) and what was done."""
    g = _Graph(source.graph)
    folds: dict[int, _Fold] = {}
    removed: set[int] = set()
    stats = Stats(nodes_before=len(g.nodes))
    stats.conv_affine = _find_conv_affine(g, folds, removed)
    hardswish = _find_hardswish(g, removed)
    stats.hardswish = len(hardswish)
    stats.affine_conv = _find_affine_conv(g, folds, removed)

    nodes: list[onnx.NodeProto] = []
    for index, node in enumerate(g.nodes):
        if index in removed:
            continue
        if index in folds:
            fold = folds[index]
            w_name = g.fresh(f"{node.input[1]}.folded")
            b_base = node.input[2] if len(node.input) == 3 and node.input[2] else node.input[1]
            b_name = g.fresh(f"{b_base}.folded_bias")
            nodes.append(_constant(w_name, fold.weight))
            nodes.append(_constant(b_name, fold.bias))
            conv = helper.make_node(
                "Conv", [fold.data, w_name, b_name], [fold.output], name=node.name
            )
            conv.attribute.extend(node.attribute)
            nodes.append(conv)
        elif index in hardswish:
            x, out = hardswish[index], node.output[0]
            gate = g.fresh(f"{out}.hardsigmoid")
            nodes.append(
                helper.make_node("HardSigmoid", [x], [gate], name=gate, alpha=1.0 / 6.0, beta=0.5)
            )
            nodes.append(helper.make_node("Mul", [x, gate], [out], name=g.fresh(f"{out}.mul")))
        else:
            nodes.append(node)

    # Constants nothing reads any more (the replaced weights, 3, 0, 6, s, b).
    read = {name for node in nodes for name in node.input}
    read |= {out.name for out in source.graph.output}
    nodes = [n for n in nodes if n.op_type != "Constant" or n.output[0] in read]
    # Rule 4: the weights become initializers. ONNX Runtime turns Constant nodes
    # into initializers itself, holding both copies while the session loads.
    outputs = {out.name for out in source.graph.output}
    weights = [
        n
        for n in nodes
        if n.op_type == "Constant"
        and len(n.attribute) == 1
        and n.attribute[0].name == "value"
        and n.output[0] not in outputs
    ]
    moved = {n.output[0] for n in weights}
    nodes = [n for n in nodes if n.op_type != "Constant" or n.output[0] not in moved]
    stats.initializers = len(weights)
    stats.nodes_after = len(nodes)

    model = onnx.ModelProto()
    model.CopyFrom(source)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    for node in weights:
        tensor = model.graph.initializer.add()
        tensor.CopyFrom(node.attribute[0].t)
        tensor.name = node.output[0]
    kept = {name for node in nodes for name in (*node.input, *node.output)}
    kept_info = [vi for vi in model.graph.value_info if vi.name in kept]
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept_info)
    meta = [p for p in model.metadata_props if p.key != RECIPE_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(meta)
    model.metadata_props.add(key=RECIPE_KEY, value=f"{RECIPE} {RECIPE_VERSION}")
    onnx.checker.check_model(model)
    return model, stats


def derive_bytes(data: bytes) -> tuple[bytes, Stats]:
    """Serialised source model in, serialised derived model out (deterministic)."""
    source = onnx.load_from_string(data)
    model, stats = derive_model(source)
    return model.SerializeToString(deterministic=True), stats


def derive_file(source: Path, output: Path) -> Stats:
    """Derive ``output`` from ``source``; written through ``output.part`` then renamed."""
    data, stats = derive_bytes(Path(source).read_bytes())
    part = Path(output).with_name(Path(output).name + ".part")
    part.write_bytes(data)
    part.replace(output)
    return stats


def versions() -> str:
    """The versions the output bytes depend on, for messages."""
    from google.protobuf import __version__ as protobuf_version

    return f"onnx {onnx.__version__}, protobuf {protobuf_version}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the model as shipped")
    parser.add_argument("output", type=Path, help="where to write the derived model")
    args = parser.parse_args(argv)
    stats = derive_file(args.source, args.output)
    digest = hashlib.sha256(args.output.read_bytes()).hexdigest()
    print(f"{args.output}: {RECIPE} {RECIPE_VERSION}: {stats}")
    print(f"sha256 {digest} ({versions()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
