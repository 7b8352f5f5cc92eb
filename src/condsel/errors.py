"""The project's error type for bad input.

A :class:`CondselError` is something the user can fix: a missing, unreadable or
malformed file (the message names it), or an option value that cannot work.
It subclasses ``ValueError``, so code that validates with ``ValueError`` keeps
working; ``condsel.cli.main`` reports either as ``condsel CMD: error: ...`` and
exit status 2, and is the only place that does.
"""


class CondselError(ValueError):
    """Bad input; ``str()`` says what and where (the file, the row, the option)."""


class NotFittedError(ValueError, AttributeError):
    """An estimator (a policy, the selector) was used before ``fit``, as scikit-learn's ``NotFittedError``."""
