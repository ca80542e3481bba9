"""Errors a user can act on. Their message names the file or setting and says what to do.

The CLI prints them as one line with exit code 2; the GUI shows them in a dialog
without a traceback. Anything else is a bug and is shown with its traceback in the log.
"""


class UserError(Exception):
    """Bad input from the user (a folder, a file, a setting)."""
