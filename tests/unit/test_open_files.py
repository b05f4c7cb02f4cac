"""Files are closed by the code that opened them, never by their own finalizer: under
``filterwarnings = error`` a file that closes itself is a ResourceWarning, and the collector
reports it in whichever test (and thread) it happens to run, far from its cause."""

from __future__ import annotations

import gc
import io
import warnings
import zipfile
from pathlib import Path

import pytest

from mixpeek_pulumi.files import bundle
from mixpeek_pulumi.files.contents import digest
from mixpeek_pulumi.files.excludes import Excludes
from tests.engine import ProviderHost
from tests.sites import site


def test_a_zip_collection_dropped_in_a_reference_cycle_closes_its_archive(tmp_path: Path) -> None:
    packed = tmp_path / "site.zip"
    with zipfile.ZipFile(packed, "w") as zf:
        for name, text in site().items():
            zf.writestr(name, text)
    files = bundle.collect(packed, Excludes())
    digest(files)  # opens the one archive every entry shares
    # A collector pass while the open file is held from outside the collector's view leaves
    # the file ahead of its ZipFile in the collector's list (a pass during a pool thread's
    # read does the same by chance); garbage is finalized in that order.
    reader = next(
        o
        for o in gc.get_objects()
        if isinstance(o, io.BufferedReader) and o.name == str(packed) and not o.closed
    )
    gc.collect()
    del reader
    cycle: list[object] = [files]  # as an exception's traceback holding the files would
    cycle.append(cycle)
    del files, cycle
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    assert [str(w.message) for w in caught] == []


def test_a_provider_host_that_dies_before_its_handshake_leaves_no_pipe_open() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(RuntimeError, match="exited before its handshake"):
            ProviderHost(python="false")  # exits at once, having printed no port
        gc.collect()
    assert [str(w.message) for w in caught] == []
