"""Video search over titles, descriptions and tags of local and known remote videos.

Full-text, through the database's own engine: an FTS5 table (``videos_fts``) in the embedded
mode (SQLite), a GIN index on a weighted ``to_tsvector('simple', …)`` in the scaled mode
(PostgreSQL); both are made by migration ``0006_search``. Every word of the query must match
(the last one as a prefix, so results come while typing), among the videos the caller may
list. Order: videos whose title holds every word first, then the engine's relevance (title
weighs more than tags, tags more than description), then newest.

Words are reduced to letters and digits before they reach the query syntax of either
engine, so no user input is ever parsed as an operator.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, and_, case, column, func, literal_column, select, table
from sqlalchemy.orm import joinedload

from ..core import Shoal
from ..models import Actor, User, Video
from .video_lists import Page
from .videos import reading
from .visibility import Viewer, listing_clause, nsfw_clause

MAX_WORDS = 8
MAX_WORD_LENGTH = 64

# Must stay the expression of ``ix_videos_search`` (migration 0006_search) word for word.
PG_VECTOR = (
    "(setweight(to_tsvector('simple'::regconfig, videos.name), 'A')"
    " || setweight(to_tsvector('simple'::regconfig, videos.tags::text), 'B')"
    " || setweight(to_tsvector('simple'::regconfig, videos.description), 'C'))"
)
# bm25 column weights of ``videos_fts(name, description, tags)``.
FTS5_WEIGHTS = (10.0, 1.0, 4.0)

_fts = table("videos_fts", column("rowid"))


def words(terms: str) -> list[str]:
    """The query's words: runs of letters and digits, lower-cased, at most ``MAX_WORDS``."""
    found = re.findall(r"[^\W_]+", terms.lower())
    return [word[:MAX_WORD_LENGTH] for word in found][:MAX_WORDS]


def fts5_query(found: list[str]) -> str:
    """An FTS5 MATCH expression: every word, the last one as a prefix."""
    quoted = [f'"{word}"' for word in found]
    quoted[-1] += "*"
    return " AND ".join(quoted)


def tsquery(found: list[str]) -> str:
    """A ``to_tsquery`` expression: every word, the last one as a prefix."""
    quoted = [f"'{word}'" for word in found]
    quoted[-1] += ":*"
    return " & ".join(quoted)


def _title_hit(found: list[str]) -> ColumnElement[bool]:
    return case((and_(*[func.lower(Video.name).contains(w, autoescape=True) for w in found]), 0), else_=1)


async def search_videos(
    shoal: Shoal, user: User | None, terms: str, *, start: int, count: int
) -> Page[Video]:
    """One page of the videos ``user`` may list that match every word of ``terms``."""
    found = words(terms)
    if not found:
        return Page(0, [])
    viewer = Viewer.of(user)
    where: list[Any] = [listing_clause(viewer), nsfw_clause(viewer, None)]
    dialect = shoal.db.engine.dialect.name
    async with reading(shoal) as session:
        if dialect == "postgresql":
            vector = literal_column(PG_VECTOR)
            query = func.to_tsquery(literal_column("'simple'::regconfig"), tsquery(found))
            where.append(vector.op("@@")(query))
            base = select(Video).where(*where)
            rank = func.ts_rank(vector, query).desc()
        else:
            match = literal_column("videos_fts").op("MATCH")(fts5_query(found))
            base = select(Video).join(_fts, _fts.c.rowid == Video.id).where(match, *where)
            rank = func.bm25(literal_column("videos_fts"), *FTS5_WEIGHTS)
        total = await session.scalar(select(func.count()).select_from(base.subquery())) or 0
        rows = await session.scalars(
            base.options(joinedload(Video.channel).joinedload(Actor.owner))
            .order_by(
                _title_hit(found), rank, func.coalesce(Video.published_at, Video.created_at).desc(), Video.id
            )
            .offset(start)
            .limit(count)
        )
        return Page(total, list(rows))
