"""Every error helpdesk-qa raises on purpose, in one tree rooted in `QAError`.

A caller that only wants "did helpdesk-qa refuse this, and why" catches `QAError`
(the CLI does, and prints `error: <message>` once). The message always says what
is wrong and, where there is one, what to do about it.

    QAError
    ├── CorpusError           a malformed article or synonyms file: `path:line: reason`
    ├── CorpusNotFound        no corpus folder at that path (also a FileNotFoundError)
    ├── NothingToBuild        nothing valid to build from (no article, too few pairs)
    ├── IndexLoadError        an index build that cannot be served
    │   ├── IndexNotFound     no build yet
    │   ├── IndexCorrupt      unreadable or incomplete build
    │   ├── ModelMismatch     built with another model than the one configured
    │   └── ModelUnavailable  a build's own model folder (qa adapt) is missing or broken
    ├── StoreError            the event store failed or is misconfigured
    ├── QuestionFileError     a malformed labelled-questions file: `path:line: reason`
    ├── ModelFolderError      a model folder or engine file that cannot be used
    ├── MissingDependency     a program the command needs is not installed (nginx)
    ├── StartupError          a server or nginx that would not start, or died
    ├── AdaptStopped          `qa adapt` asked to stop (SIGTERM) while it runs
    └── UsageError            a command-line or setting value that makes no sense
"""

from __future__ import annotations

from pathlib import Path


class QAError(Exception):
    """Base of every error helpdesk-qa raises on purpose."""


class CorpusError(QAError):
    """A malformed article (or synonyms file): `path:line: reason`."""

    def __init__(self, path: Path | str, line: int, reason: str):
        self.path, self.line, self.reason = str(path), line, reason
        super().__init__(f"{path}:{line}: {reason}")


class CorpusNotFound(QAError, FileNotFoundError):
    """No corpus folder at the given path."""


class NothingToBuild(QAError):
    """Nothing valid to build from: no article in the corpus, too few training pairs."""


class IndexLoadError(QAError):
    """An index build that cannot be served."""


class IndexNotFound(IndexLoadError):
    pass


class IndexCorrupt(IndexLoadError):
    pass


class ModelMismatch(IndexLoadError):
    pass


class ModelUnavailable(IndexLoadError):
    """A build carries its own model folder (qa adapt), and it is missing or broken."""


class StoreError(QAError):
    """The event store failed, or its URL is not supported."""


class QuestionFileError(QAError):
    """A malformed line in a labelled-questions file: `path:line: reason`."""


class ModelFolderError(QAError):
    """A model folder or engine file that cannot be read, built or trained from."""


class MissingDependency(QAError):
    """A program the command needs is not installed."""


class StartupError(QAError):
    """A server or nginx that would not start, or died."""


class AdaptStopped(QAError):
    """SIGTERM (`qa adapt --stop`, a container stopping) while an adaptation runs."""


class UsageError(QAError):
    """A command-line argument or setting that makes no sense."""
