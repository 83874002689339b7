"""What a check says about one photo: pass or fail, the measured value, and the summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Source = Literal["preview", "full", "band"]  # band: the top rows of the main image
Scalar = float | str | None


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """One check on one photo; ``message`` is written for the technician, ``value`` for the record.

    ``judged`` is False when the check could not be applied (a missing EXIF field, a photo with
    no texture): such an outcome is ``ok`` because not knowing is not a defect.
    """

    name: str
    ok: bool
    message: str
    value: Scalar = None
    threshold: Scalar = None
    judged: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "message": self.message,
            "value": self.value,
            "threshold": self.threshold,
            "judged": self.judged,
        }


@dataclass(frozen=True, slots=True)
class ImageChecks:
    """Every outcome for one photo; ``valid`` is True when none of them failed."""

    name: str
    valid: bool
    outcomes: tuple[CheckOutcome, ...]
    source: Source
    seconds: float

    @classmethod
    def of(
        cls, name: str, outcomes: tuple[CheckOutcome, ...], source: Source, seconds: float
    ) -> ImageChecks:
        """Build the summary, deriving ``valid`` from the outcomes so the two cannot disagree."""
        return cls(name, all(o.ok for o in outcomes), outcomes, source, seconds)

    @property
    def failures(self) -> tuple[CheckOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.ok)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "valid": self.valid,
            "source": self.source,
            "seconds": round(self.seconds, 4),
            "outcomes": [o.to_json() for o in self.outcomes],
        }
