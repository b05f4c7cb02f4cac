"""Batch pipeline: how documents flow through the extractor."""

import os


def build_steps(config=None):
    return [{"name": "embed", "source": os.path.join("inputs", "text")}]
