"""Errors the tool reports to users as one line, without a traceback and without feedback text."""


class ClassifierError(Exception):
    """A problem with the user's input, files or settings; the message is safe to print.

    Messages name files, rows and columns, never the feedback text itself.
    """
