"""Implementation of the pattern detectors; the public front is :mod:`nqp.neuromorphic.patterns`.

One module per family: ``population`` (synchronous, rhythmic, sparse), ``waves``
(traveling, standing), ``dynamics`` (chaotic), ``novelty`` (emergent, stateful) and
``bursts`` (burst); ``_common`` holds the shared input checks and signal helpers.
"""

from __future__ import annotations

__all__: list[str] = []
