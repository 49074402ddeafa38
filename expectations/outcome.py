"""What a checkpoint concludes about one expectation on one batch, and the two errors it
raises. Its own module: the checkpoint runner and the validation page both use these, and
neither should import the other to get them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from crm.errors import BadInputError

CRITICAL = "critical"
WARNING = "warning"
#: Example rows kept per failed expectation (in the table, the error and the report).
EXAMPLES = 5


class CriticalExpectationFailed(BadInputError):
    """A critical expectation failed: the data is wrong, a retry cannot help."""


class ExpectationError(RuntimeError):
    """GX failed to evaluate an expectation (a bug or a type it cannot handle): retryable,
    and never a verdict on the data."""


@dataclass
class Outcome:
    """One expectation evaluated on one batch."""

    checkpoint: str
    suite: str
    batch: str
    expectation: str
    column_name: str | None
    description: str
    severity: str
    success: bool
    observed: str
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    examples: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        where = f"{self.suite} [{self.batch}]"
        text = f"{where}: expected {self.description}; observed {self.observed}"
        if self.examples:
            text += "\n    e.g. " + "\n         ".join(
                json.dumps(e, default=str) for e in self.examples
            )
        return text
