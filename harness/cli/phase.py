"""``--phase``: which phase's layers a command reads from a prototxt (Caffe's include/exclude rules).

The paper convention reads a file as Netscope's website does, in TRAIN; the caffe convention, and every
command that runs a network, as Caffe builds it for inference, in TEST.
"""

from __future__ import annotations

import argparse

PHASES = ("train", "test")


def add_phase_argument(p: argparse.ArgumentParser, help: str) -> None:
    # Caffe spells the phases TRAIN and TEST (its Phase enum): either case is taken.
    p.add_argument("--phase", type=str.lower, choices=PHASES, default=None, help=help)


def phase_of(args: argparse.Namespace, convention: str = "caffe") -> str:
    """TRAIN or TEST: --phase if given, else the convention's (paper: TRAIN, caffe: TEST)."""
    if args.phase is not None:
        return str(args.phase).upper()
    return "TRAIN" if convention == "paper" else "TEST"
