"""``node.runner.raise_descriptor_limit``: a node starts with its soft open-file
limit at the hard one, so a flood of connections meets the listener's caps
(``node.listener``) long before the process runs out of descriptors."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import resource
from node.runner import raise_descriptor_limit
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
returned = raise_descriptor_limit()
print(*resource.getrlimit(resource.RLIMIT_NOFILE), returned)
"""


def test_the_soft_open_file_limit_is_raised_to_the_hard_one() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
    soft_after, hard_after, returned = (int(v) for v in done.stdout.split())
    assert hard_after == hard
    assert soft_after == (hard if hard != resource.RLIM_INFINITY else 256)
    assert returned == soft_after
