"""Errors the tool reports to users as one line, without a traceback and without feedback text."""


class ClassifierError(Exception):
    """A problem with the user's input, files or settings; the message is safe to print.

    Messages name files, rows and columns, never the feedback text itself.
    """


def model_not_found(path: object) -> ClassifierError:
    """The one error for a missing model file, whichever kind of model was asked for."""
    return ClassifierError(
        f"{path}: model file not found (train one with `classifier train`, "
        "or pass --model / set CLASSIFIER_MODEL)"
    )
