"""The one exception type that means "the user asked for something we cannot do"."""


class UserError(Exception):
    """A mistake in the user's input. The message names the problem and the fix.

    Faces show it as one line (the CLI exits with code 2); it never becomes a traceback.
    """


class JobFailed(Exception):
    """Training cannot go on for a reason outside this process: another process of a distributed job
    failed or was stopped. Faces show it as one line (the CLI exits with code 1)."""
