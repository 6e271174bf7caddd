"""One exception type for problems a user can fix (bad flag, missing file).

The CLI prints its message without a traceback; the app shows it in a box.
"""


class TinyLLMError(Exception):
    pass
