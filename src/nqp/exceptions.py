"""Exceptions raised by NQP.

Every error NQP raises on purpose derives from :class:`NQPError` and from the
built-in exception a caller would naturally catch, so ``except ValueError``
keeps working::

    NQPError
    ├── InvalidParameterError (ValueError)      a constructor/config parameter is out of range
    ├── InvalidInputError (ValueError)          data passed to an engine is malformed
    ├── NotFittedError (ValueError, AttributeError)
    │                                           predict/step before fit/start
    ├── ConvergenceError (RuntimeError)         an iterative solver missed its tolerance
    └── FileFormatError (ValueError)            an input file does not parse (names line/field)

Only the service layer turns these into HTTP errors.
"""

from __future__ import annotations

__all__ = [
    "ConvergenceError",
    "FileFormatError",
    "InvalidInputError",
    "InvalidParameterError",
    "NQPError",
    "NotFittedError",
]


class NQPError(Exception):
    """Base class of every exception NQP raises deliberately."""


class InvalidParameterError(NQPError, ValueError):
    """A parameter of an estimator, engine or setting is outside its allowed values."""


class InvalidInputError(NQPError, ValueError):
    """Input data has the wrong shape, dtype or contains non-finite values."""


class NotFittedError(NQPError, ValueError, AttributeError):
    """An object was used before it was fitted or started."""


class ConvergenceError(NQPError, RuntimeError):
    """An iterative numerical method did not reach its tolerance."""


class FileFormatError(NQPError, ValueError):
    """An input file could not be parsed; the message names the line or field."""
