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
    """Every outcome for one photo; ``valid`` is False when one of them failed, else True,
    or None when the photo's pixels could not be judged (``not_checked`` says why)."""

    name: str
    valid: bool | None
    outcomes: tuple[CheckOutcome, ...]
    source: Source
    seconds: float
    not_checked: str | None = None  # "not checked: <why>": no pixels the checks can judge

    @classmethod
    def of(
        cls,
        name: str,
        outcomes: tuple[CheckOutcome, ...],
        source: Source,
        seconds: float,
        not_checked: str | None = None,
    ) -> ImageChecks:
        """Build the summary, deriving ``valid`` from the outcomes so the two cannot disagree."""
        failed = not all(o.ok for o in outcomes)
        valid = False if failed else (None if not_checked else True)
        return cls(name, valid, outcomes, source, seconds, not_checked)

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
            "not_checked": self.not_checked,
        }
