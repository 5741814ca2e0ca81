"""Domain errors: each says what was wrong, with which input, and what to do."""


class S2Error(Exception):
    """Base of every error a user is meant to read; extra holds machine-readable details."""

    def __init__(self, message: str, *, extra: dict | None = None):
        super().__init__(message)
        self.extra = extra or {}


class NotFound(S2Error):
    """A named thing (dataset, branch, tag, revision, example) does not exist."""


class AlreadyExists(S2Error):
    """A name is already taken."""


class InvalidInput(S2Error):
    """Input the user gave is malformed or violates the dataset's rules."""


class Conflict(S2Error):
    """The change collides with another one (merge conflict, stale edit, moved branch)."""


class NothingToCommit(S2Error):
    """A commit was asked for but nothing would change."""


class BranchMoved(Conflict):
    """A branch head moved between reading and writing it (lost the compare-and-swap)."""


class CommitOutcomeUnknown(S2Error):
    """The database connection was lost while COMMIT was under way: the change may or may not have been saved."""


class Unauthorized(S2Error):
    """No credentials, or credentials that name no active token."""


class Forbidden(S2Error):
    """The caller is known but their role or assignment does not allow this."""


class UpstreamFailed(S2Error):
    """A service s2 talks to on the user's behalf (Label Studio) could not be reached, or failed."""


class TooManyAttempts(S2Error):
    """Too many failed sign-ins for one user in a row: the next one must wait (extra: retry_after seconds)."""


class VersionRequired(InvalidInput):
    """An edit that must say which version of the example its editor saw did not."""


class TooLarge(InvalidInput):
    """An upload or request body is over the configured limit."""


class SettingsInvalid(ValueError):
    """An S2_* variable holds a value its setting cannot take."""


class DatabaseUnavailable(RuntimeError):
    """The configured database cannot be reached or opened."""
