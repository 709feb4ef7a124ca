"""Exception types raised by bnblip.

Every error caused by bad user input derives from :class:`InputError`, so that
front ends (the CLI) can report it in one line and exit with code 2.
"""


class BnblipError(Exception):
    """Base class of every exception raised on purpose by bnblip."""


class InputError(BnblipError, ValueError):
    """An argument, file or model violates a documented rule.

    The message names the offending argument (or operator / layer) and the rule.
    """


class UnsupportedModelError(InputError):
    """A model contains an operator or layer bnblip cannot represent."""


class TooLargeError(InputError):
    """A problem exceeds the size a method accepts (e.g. enumeration)."""
