"""Full-text video search (``GET /api/v1/search/videos``): FTS5 on SQLite, tsvector on PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select, text, update

from instance.models import Actor, ActorKind, Privacy, Role, Video, VideoState
from instance.services.search import PG_VECTOR, tsquery, words
from instance.services.videos import add_video
from tests.conftest import SCALED, ApiClient, Instance
from tests.instance.test_videos import new_video


async def found(client: ApiClient, terms: str) -> list[str]:
    """Names of the videos a search returns, in order (total checked against the page)."""
    status, body = await client.get("/api/v1/search/videos", params={"search": terms})
    assert status == 200, body
    assert body["total"] == len(body["data"]), body
    return [item["name"] for item in body["data"]]


async def remote_video(instance: Instance, name: str, **fields: object) -> Video:
    """A video of a channel on another instance, as federation stores it."""
    shoal = instance.shoal
    async with shoal.db.write() as session:
        channel = Actor(
            kind=ActorKind.GROUP,
            preferred_username="far_channel",
            host="far.example",
            handle_key="far_channel@far.example",
            ap_id="https://far.example/video-channels/far_channel",
            inbox_url="https://far.example/video-channels/far_channel/inbox",
        )
        session.add(channel)
        await session.flush()
        return await add_video(
            shoal, session, channel, name=name, remote_url="https://far.example/videos/watch/1",
            state=VideoState.PUBLISHED,
            **fields,
        )


async def test_words_in_title_description_and_tags(instance: Instance) -> None:
    await instance.create_user("alice")
    await new_video(instance, "alice", "Sourdough basics", description="Flour, water and patience.")
    await new_video(instance, "alice", "Morning routine", tags=["bread", "kitchen"])
    await new_video(instance, "alice", "Bread in one hour", description="A quick loaf.")
    await new_video(instance, "alice", "Café à Paris", description="Un crème, s'il vous plaît")
    anonymous = instance.client
    assert await found(anonymous, "patience") == ["Sourdough basics"]
    assert await found(anonymous, "KITCHEN") == ["Morning routine"]
    # Title hits first, then the tag hit.
    assert await found(anonymous, "bread") == ["Bread in one hour", "Morning routine"]
    # Every word must match, in any field.
    assert await found(anonymous, "flour sourdough") == ["Sourdough basics"]
    assert await found(anonymous, "flour kitchen") == []
    # Prefix search on the last word; letters beyond ASCII are words too.
    assert await found(anonymous, "sourd") == ["Sourdough basics"]
    assert await found(anonymous, "CAFÉ par") == ["Café à Paris"]
    # Query syntax of either engine is not exposed.
    for junk in ['"', "'", "a:*", "NOT OR AND", "*", "(", "!!", "bread & | !"]:
        status, _ = await anonymous.get("/api/v1/search/videos", params={"search": junk})
        assert status == 200, junk
    assert await found(anonymous, "bread & | !") == ["Bread in one hour", "Morning routine"]


async def test_title_matches_rank_first(instance: Instance) -> None:
    await instance.create_user("alice")
    # Created first so that recency alone would put it last; the word is only in its title.
    await new_video(instance, "alice", "Guitar", description="Short.")
    await new_video(
        instance, "alice", "Lesson one", description="guitar " * 20, tags=["guitar", "strings"]
    )
    await new_video(instance, "alice", "Lesson two", description="About the guitar.")
    names = await found(instance.client, "guitar")
    assert names[0] == "Guitar"
    # Tags weigh more than the description.
    assert names[1:] == ["Lesson one", "Lesson two"]


async def test_edits_and_deletes_follow_the_index(instance: Instance) -> None:
    await instance.create_user("alice")
    video = await new_video(instance, "alice", "Old title")
    assert await found(instance.client, "old") == ["Old title"]
    async with instance.shoal.db.write() as session:
        renamed = update(Video).where(Video.id == video.id).values(name="Renamed", tags=["fresh"])
        await session.execute(renamed)
    assert await found(instance.client, "old") == []
    assert await found(instance.client, "fresh") == ["Renamed"]
    async with instance.shoal.db.write() as session:
        await session.delete(await session.get(Video, video.id))
    assert await found(instance.client, "renamed") == []


async def test_private_videos_are_found_only_by_who_may_see_them(instance: Instance) -> None:
    await instance.create_user("alice")
    bob = await instance.user_client("bob")
    mod = await instance.user_client("mod", role=Role.MODERATOR)
    await new_video(instance, "alice", "Secret plans", privacy=Privacy.PRIVATE)
    await new_video(instance, "alice", "Unlisted plans", privacy=Privacy.UNLISTED)
    await new_video(instance, "alice", "Internal plans", privacy=Privacy.INTERNAL)
    await new_video(instance, "alice", "Public plans")
    assert await found(instance.client, "plans") == ["Public plans"]
    assert sorted(await found(bob, "plans")) == ["Internal plans", "Public plans"]
    # Lists never show private videos unless asked for (``/users/me/videos`` is the owner's place).
    assert "Secret plans" not in await found(mod, "plans")
    assert await found(bob, "secret") == []


async def test_remote_videos_are_found(instance: Instance) -> None:
    await instance.create_user("alice")
    await new_video(instance, "alice", "Local volcano")
    await remote_video(instance, "Faraway volcano", description="Lava everywhere")
    assert sorted(await found(instance.client, "volcano")) == ["Faraway volcano", "Local volcano"]
    assert await found(instance.client, "lava") == ["Faraway volcano"]


def test_words_are_reduced_to_letters_and_digits() -> None:
    assert words("  Hello, WORLD!  it's 4k_video ") == ["hello", "world", "it", "s", "4k", "video"]
    assert words("'\" :* & | ()") == []
    assert tsquery(["a", "b"]) == "'a' & 'b':*"


async def test_index_is_used(instance: Instance) -> None:
    """PostgreSQL plans the search on the GIN index; SQLite reads the FTS5 table."""
    await instance.create_user("alice")
    await new_video(instance, "alice", "Indexed")
    async with instance.shoal.db.write() as session:
        if SCALED:
            await session.execute(text("SET LOCAL enable_seqscan = off"))
            plan = await session.execute(
                text(f"EXPLAIN SELECT id FROM videos WHERE {PG_VECTOR} @@ to_tsquery('simple', :q)"),
                {"q": "'indexed':*"},
            )
            assert "ix_videos_search" in "\n".join(row[0] for row in plan)
        else:
            match = text("SELECT rowid FROM videos_fts WHERE videos_fts MATCH 'indexed'")
            rows = await session.execute(match)
            assert len(rows.all()) == 1
        assert await session.scalar(select(Video.name)) == "Indexed"
