"""buildtape: a flight recorder for software builds.

Build scripts can mark their own steps and metrics; outside ``buildtape record`` these
calls do nothing::

    import buildtape

    with buildtape.step("codegen"):
        ...
    buildtape.metric("objects", 42, unit="files")
"""

from buildtape.build_events import event, metric, step
from recorder import __version__

__all__ = ["__version__", "event", "metric", "step"]
