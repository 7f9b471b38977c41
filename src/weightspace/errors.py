"""The one exception type users see: a clear sentence, no traceback (unless --debug)."""


class WeightspaceError(Exception):
    """Bad input or an unusable file: the message says what, where, and what to do."""
