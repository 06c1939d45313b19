"""Kafka client settings as they travel from the shell to connectors and pipeline stages.

``ClientConfig`` is a frozen mapping of kafka-python keyword arguments (so ``**config`` and
``Mapping[str, Any]`` parameters work unchanged) whose secrets never show in ``repr``: it
is carried in ``PipelineConfig``, ``IngestConfig`` and the state of DoFns, all of which are
logged, printed in tracebacks and pickled to workers. It lives on the ground floor because
both ``connectors`` and ``pipeline`` hold one and neither may import the shell.

It must never hold anything but client keyword arguments, and never print a secret value.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

MASK = "**********"
# kafka-python arguments whose values are credentials.
SECRET_KEYS = frozenset({"sasl_plain_password", "ssl_password", "sasl_oauth_token_provider"})


class MaskedSecret(str):
    """A credential that is a ``str`` to kafka-python (it encodes it when it logs in) but
    masked in ``repr``, so it stays masked in a plain ``dict`` copied from a ``ClientConfig``
    (``dict(config)``, ``{**config}``) and in whatever state holds that copy."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(MASK)


class ClientConfig(Mapping[str, Any]):
    """Frozen kafka-python keyword arguments, secrets masked in ``repr``."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        given = {**(values or {}), **more}
        self._values: dict[str, Any] = {
            key: MaskedSecret(value) if key in SECRET_KEYS and isinstance(value, str) else value
            for key, value in given.items()
        }

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def with_options(self, **more: Any) -> ClientConfig:
        """A copy with ``more`` added (or replaced); this one stays as it is."""
        return ClientConfig(self._values, **more)

    def __repr__(self) -> str:
        shown = {key: MASK if key in SECRET_KEYS and v is not None else v for key, v in self._values.items()}
        return f"ClientConfig({shown!r})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[type[ClientConfig], tuple[dict[str, Any]]]:
        return ClientConfig, (dict(self._values),)
