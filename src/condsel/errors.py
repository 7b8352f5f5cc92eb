"""The project's error type for bad input.

A :class:`CondselError` is something the user can fix: a missing, unreadable or
malformed file (the message names it), or an option value that cannot work.
It subclasses ``ValueError``, so code that validates with ``ValueError`` keeps
working; ``condsel.cli.main`` reports either as ``condsel CMD: error: ...`` and
exit status 2, and is the only place that does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class CondselError(ValueError):
    """Bad input; ``str()`` says what and where (the file, the row, the option)."""


class NotFittedError(ValueError, AttributeError):
    """An estimator (a policy, the selector) was used before ``fit``, as scikit-learn's ``NotFittedError``."""


def names_the_file(load: Callable[..., T]) -> Callable[..., T]:
    """Decorate a loader whose first argument is a file: any ``ValueError`` leaves it as a :class:`CondselError`
    that names the file, so every importer fails the same documented way whatever layer found the problem."""

    @functools.wraps(load)
    def wrapper(path, *args, **kwargs):
        try:
            return load(path, *args, **kwargs)
        except CondselError:
            raise
        except ValueError as e:
            message = str(e)
            raise CondselError(message if str(path) in message else f"{path}: {message}") from e

    return wrapper
