"""How every package writes a size for people: one formatter, so ``show``, ``gc``, the
HTML report and the rest say ``1.5 KiB`` the same way. (``buildtape.params.size_text``
is another thing: the exact ``64M`` syntax that size options read.)"""

from __future__ import annotations


def human_size(n: float) -> str:
    """Bytes in powers of 1024: ``512 B``, ``1.5 KiB``, ``3.2 GiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
