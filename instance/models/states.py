"""State graphs of domain rows: which states a row may move to, which are final, and which
job moves it on (the model is Takahē's Stator: the graph is declared beside the model).

A row in a non-final state must have an open work row of its graph's job kind; one that has
none was left behind (a crash before its job was written, a job given up without settling it)
and `shoal doctor` lists it (:func:`instance.doctor.check_stuck`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class BadTransition(ValueError):
    """A move the graph does not allow."""


@dataclass(frozen=True)
class StateGraph:
    """The states of one kind of row and the moves between them."""

    name: str
    initial: str
    transitions: dict[str, frozenset[str]]
    # The job kind whose rows move a non-final row on (the work row's subject is the row's id).
    work_kind: str
    final: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        targets = {target for moves in self.transitions.values() for target in moves}
        unknown = targets - set(self.transitions)
        if unknown:
            raise ValueError(f"{self.name}: transitions to undeclared states {sorted(unknown)}")
        # A final state has no way out but to itself.
        final = frozenset(s for s, targets in self.transitions.items() if targets <= {s})
        object.__setattr__(self, "final", final)

    def allows(self, old: str | None, new: str) -> bool:
        """Whether a row may move from ``old`` (None: a new row) to ``new``."""
        if old is None:
            return new in self.transitions
        return new in self.transitions.get(old, frozenset())

    def check(self, old: str | None, new: str) -> None:
        """Raise :class:`BadTransition` unless :meth:`allows` it."""
        if not self.allows(old, new):
            raise BadTransition(f"{self.name} cannot go from {old} to {new}")

    def sources(self, new: str) -> list[str]:
        """The states a row may reach ``new`` from."""
        return [old for old, targets in self.transitions.items() if new in targets]

    @property
    def open_states(self) -> list[str]:
        """The states that still wait for work."""
        return [state for state in self.transitions if state not in self.final]
