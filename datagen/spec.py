"""What to generate (the spec), what comes out, and the building blocks every part of the
demo CRM draws with: the seasonal calendar, times of day, ids, choices, and the clock that
turns float days since the start of the history into timestamps and dates."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DAY_S = 86_400


@dataclass(frozen=True)
class GenerationSpec:
    customers: int
    seed: int = 42
    end: date = field(default_factory=lambda: datetime.now(UTC).date())
    history_days: int = 730

    @property
    def start(self) -> date:
        return self.end - timedelta(days=self.history_days)


@dataclass
class GeneratedCRM:
    spec: GenerationSpec
    tables: dict[str, pa.Table]
    facts: dict
    #: For entities written as monthly files: each row's month (months since 1970-01).
    partitions: dict[str, np.ndarray] = field(default_factory=dict)


class Calendar:
    """Seasonal intensity over the history; samples event days proportional to it."""

    def __init__(self, start: date, days: int):
        self.start = start
        self.days = days
        ordinal = np.arange(days) + start.toordinal()
        dates = [date.fromordinal(int(o)) for o in ordinal]
        doy = np.array([d.timetuple().tm_yday for d in dates], dtype=float)
        month = np.array([d.month for d in dates])
        dom = np.array([d.day for d in dates])
        weekday = np.array([d.weekday() for d in dates])
        weight = 1.0 + 0.15 * np.sin(2 * np.pi * (doy - 100) / 365.25)
        weight += 0.55 * (((month == 11) & (dom >= 20)) | ((month == 12) & (dom <= 24)))
        weight *= np.array([0.95, 0.95, 0.97, 1.0, 1.08, 1.25, 0.9])[weekday]
        weight /= weight.mean()
        self.cum = np.concatenate([[0.0], np.cumsum(weight)])
        self.grid = np.arange(days + 1, dtype=float)

    def mass(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.interp(b, self.grid, self.cum) - np.interp(a, self.grid, self.cum)

    def sample(self, a: np.ndarray, b: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Days in [a, b) drawn with the seasonal intensity (u uniform in [0, 1))."""
        ca = np.interp(a, self.grid, self.cum)
        cb = np.interp(b, self.grid, self.cum)
        return np.interp(ca + u * (cb - ca), self.cum, self.grid)


_HOUR_WEIGHTS = np.array(
    [1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3, 4, 5, 6, 7, 6.5, 5.5, 5, 5.5, 6.5, 8, 8.5, 8, 6, 4, 2],
    dtype=float,
)


def with_time_of_day(rng: np.random.Generator, days: np.ndarray) -> np.ndarray:
    """Keep the day, draw a realistic hour and minute within it."""
    hours = rng.choice(24, size=days.size, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    seconds = hours * 3600 + rng.integers(0, 3600, size=days.size)
    return np.floor(days) + seconds / DAY_S


def ids(prefix: str, count: int, width: int, start: int = 1) -> pa.Array:
    numbers = pa.array(np.arange(start, start + count, dtype=np.int64)).cast(pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(numbers, width, "0"), "")


def pick(rng: np.random.Generator, options, weights, size: int) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return np.asarray(options, dtype=object)[rng.choice(len(options), size=size, p=w / w.sum())]


class Clock:
    """Converts float days since the start of the history to timestamps and dates."""

    def __init__(self, start: date):
        self.origin_us = (
            int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()) * 10**6
        )
        self.start = start

    def ts(self, days: np.ndarray) -> pa.Array:
        days = np.asarray(days, dtype=float)
        mask = np.isnan(days)
        micros = self.origin_us + np.round(np.nan_to_num(days) * DAY_S).astype(np.int64) * 10**6
        return pa.array(micros, type=pa.timestamp("us"), mask=mask)

    def dates(self, days: np.ndarray) -> pa.Array:
        days = np.asarray(days, dtype=float)
        mask = np.isnan(days)
        ordinal = (self.start - date(1970, 1, 1)).days + np.floor(np.nan_to_num(days)).astype(
            np.int32
        )
        return pa.array(ordinal, type=pa.date32(), mask=mask)

    def months(self, days: np.ndarray) -> np.ndarray:
        """Calendar month of each day as an int (months since 1970-01), for partitioning."""
        stamps = np.datetime64(self.start.isoformat(), "D") + np.floor(days).astype(
            "timedelta64[D]"
        )
        return stamps.astype("datetime64[M]").astype(np.int64)


def labels(codes: np.ndarray, vocabulary) -> pa.Array:
    """Small integer codes to an Arrow string column, without Python strings per row."""
    dictionary = pa.array(list(vocabulary), pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(codes), dictionary).cast(pa.string())
