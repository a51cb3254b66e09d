"""The hash cache never hands back the hash of content a file no longer has.

Its entries are keyed by what ``stat`` says (size, mtime, ctime, inode). A file rewritten
with the same size within one tick of its file system's clock keeps all four, so an entry
made in that tick would be stale: git's "racy clean" entry. On this kernel ext4 and tmpfs
give a fine-grained ctime to a change that follows a ``stat`` (multigrain timestamps), so
the test makes the race where it happens everywhere: on ramfs, which still stamps files
with the kernel's coarse clock, mounted in a user and mount namespace of the test's own.
The mtime is set explicitly (as ``cp -p``, ``tar`` and ``touch -r`` do), so only the ctime
tick decides, and the test checks that the rewrite did keep every stamp before it asserts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recorder.hashcache import HashCache

# Runs inside the namespaces: the file on ramfs, the cache file outside it.
RACE = r"""
import hashlib, json, os, sys
from pathlib import Path
from recorder.hashcache import HashCache

tool, cache_path = Path(sys.argv[1]), Path(sys.argv[2])
OLD = 1_500_000_000 * 10**9

def put(data):
    tool.write_bytes(data)
    os.utime(tool, ns=(OLD, OLD))

def stamps():
    st = os.stat(tool)
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]

for attempt in range(100):
    cache = HashCache(cache_path)
    put(b"version one\n")
    before = stamps()
    first = cache.sha256(str(tool))
    put(b"version two\n")  # the same size, at once
    if stamps() == before:
        break  # the rewrite fell in the same tick: the race is made
else:
    sys.exit("every rewrite moved the ctime: the race could not be made")
cache.save()  # what this recording leaves for the next one
next_run = HashCache(cache_path).sha256(str(tool))
same_run = cache.sha256(str(tool))
print(json.dumps({"first": first[0], "same_run": same_run[0], "next_run": next_run[0]}))
"""


def _ramfs_race(tmp_path: Path) -> dict[str, str]:
    mount = tmp_path / "ramfs"
    mount.mkdir()
    script = 'mount -t ramfs none "$1" && shift && exec "$@"'
    out = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh",
         str(mount), sys.executable, "-c", RACE, str(mount / "tool.h"),
         str(tmp_path / "hashes.json")],
        capture_output=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr.decode()
    result: dict[str, str] = json.loads(out.stdout)
    return result


@pytest.mark.skipif(
    shutil.which("unshare") is None, reason="mounting ramfs for the test takes unshare"
)
def test_a_same_size_rewrite_within_one_clock_tick_gets_its_new_hash(tmp_path: Path) -> None:
    result = _ramfs_race(tmp_path)
    one, two = (hashlib.sha256(v).hexdigest() for v in (b"version one\n", b"version two\n"))
    assert result["first"] == one
    assert result["same_run"] == two  # the same recording asks again
    assert result["next_run"] == two  # the next recording, from the saved cache


def test_an_entry_made_long_after_the_file_last_changed_is_trusted(tmp_path: Path) -> None:
    """The cache still saves the work it exists for: a file left alone (the interpreter
    running this test) is hashed once; the next run takes the entry and leaves the cache
    file as it was."""
    tool = os.path.realpath(sys.executable)
    cache_file = tmp_path / "hashes.json"
    first = HashCache(cache_file)
    digest = first.sha256(tool)
    first.save()
    with open(tool, "rb") as f:
        assert digest == (hashlib.sha256(f.read()).hexdigest(), os.path.getsize(tool))
    written = cache_file.stat()
    again = HashCache(cache_file)
    assert again.sha256(tool) == digest
    again.save()
    assert cache_file.stat().st_ino == written.st_ino  # not rewritten: nothing was new


def test_an_entry_of_the_older_layout_is_hashed_again(tmp_path: Path) -> None:
    """Entries written before the cache noted when they were made may be racily clean."""
    tool = tmp_path / "tool"
    tool.write_bytes(b"now\n")
    st = os.stat(tool)
    stale = hashlib.sha256(b"before\n").hexdigest()
    key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    (tmp_path / "hashes.json").write_text(json.dumps({"files": {str(tool): [*key, stale]}}))
    found = HashCache(tmp_path / "hashes.json").sha256(str(tool))
    assert found == (hashlib.sha256(b"now\n").hexdigest(), 4)
