"""The verdict of an exercise checker, and the helpers every checker shares.

Chapter: chapters/01_data.ipynb
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Verdict", "call", "unfilled", "UNFILLED"]


@dataclass(frozen=True)
class Verdict:
    """The answer of a checker: ``ok`` and a message for the reader.

    Chapter: chapters/01_data.ipynb
    """

    ok: bool
    message: str

    def __str__(self) -> str:
        return ("right: " if self.ok else "wrong: ") + self.message

    def __repr__(self) -> str:
        return str(self)

    def __bool__(self) -> bool:
        return self.ok

    def require(self) -> Verdict:
        """Return ``self`` if right, else raise ``AssertionError`` with the message.

        Chapter: chapters/01_data.ipynb
        """
        if not self.ok:
            raise AssertionError(str(self))
        return self


def call(fn, *args):
    """``fn(*args)``, or a wrong verdict naming the exception (a reader's ``...`` included).

    Chapter: chapters/01_data.ipynb
    """
    try:
        return fn(*args), None
    except Exception as exc:  # the reader's code may fail in any way
        hint = " (is a `...` of the scaffold still to fill?)" if "ellipsis" in str(exc) else ""
        return None, Verdict(False, f"calling your function raised {type(exc).__name__}: "
                                    f"{exc}{hint}")


def unfilled(value) -> bool:
    """True for ``...`` (or a tuple holding it): a scaffold not filled in yet.

    Chapter: chapters/01_data.ipynb
    """
    return value is Ellipsis or (isinstance(value, (tuple, list))
                                 and any(v is Ellipsis for v in value))


UNFILLED = Verdict(False, "your function returns `...`: fill in the `...` of the scaffold first")


