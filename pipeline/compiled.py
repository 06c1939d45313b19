"""How the pipeline compiles its few hot loops (numba): cached on disk where it can be, never fatal where not.

Numba keeps compiled machine code beside the module, or in the user's cache directory when
the install is read-only, so a machine compiles each loop once. A hardened container can
have neither writable (read-only image, no home), and numba then refuses ``cache=True``
when the module is imported. Such a process compiles its loops itself instead (about two
seconds, once per process) rather than failing to start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

from numba import njit

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def compiled(function: F) -> F:
    """``function`` as machine code (``numba.njit``, releasing the GIL), that code cached on disk if possible."""
    try:
        dispatcher = njit(cache=True, nogil=True)(function)
    except RuntimeError as error:  # "cannot cache function ...: no locator available": nowhere to write
        log.warning(
            "compiled code cannot be cached on disk; this process compiles it itself",
            extra={"function": function.__qualname__, "error": str(error)},
        )
        dispatcher = njit(nogil=True)(function)
    return cast(F, dispatcher)  # called exactly as the function is
