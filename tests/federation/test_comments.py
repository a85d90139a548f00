"""Comments over REST: threads, replies, the tree, soft deletion and who may delete."""

from __future__ import annotations

from instance.models import Privacy, Role
from tests.conftest import Instance
from tests.instance.test_videos import ISO, new_video


async def test_threads_replies_tree_and_soft_delete(instance: Instance) -> None:
    alice = await instance.user_client("alice")
    bob = await instance.user_client("bob")
    video = await new_video(instance, "alice", "Commented video")
    base = f"/api/v1/videos/{video.uuid}"

    status, body = await bob.post(f"{base}/comment-threads", json={"text": "first <b>thread</b>"})
    assert status == 200, body
    root = body["comment"]
    assert root["text"] == "first <b>thread</b>"
    assert root["threadId"] == root["id"] and root["inReplyToCommentId"] is None
    assert root["videoId"] == video.id and root["isDeleted"] is False
    assert root["url"] == f"{instance.url}/videos/watch/{video.uuid}/comments/{root['id']}"
    assert root["account"]["name"] == "bob" and ISO.match(root["createdAt"])

    status, body = await alice.post(f"{base}/comments/{root['id']}", json={"text": "author reply"})
    assert status == 200, body
    reply = body["comment"]
    assert reply["threadId"] == root["id"] and reply["inReplyToCommentId"] == root["id"]
    status, body = await bob.post(f"{base}/comments/{reply['id']}", json={"text": "nested"})
    assert status == 200, body
    nested = body["comment"]
    assert nested["threadId"] == root["id"] and nested["inReplyToCommentId"] == reply["id"]
    await bob.post(f"{base}/comment-threads", json={"text": "second thread"})

    status, page = await instance.client.get(f"{base}/comment-threads")
    assert status == 200, page
    assert page["total"] == 2 and page["totalNotDeletedComments"] == 4
    assert [c["text"] for c in page["data"]] == ["second thread", "first <b>thread</b>"]
    first = page["data"][1]
    assert first["totalReplies"] == 2 and first["totalRepliesFromVideoAuthor"] == 1
    status, page = await instance.client.get(f"{base}/comment-threads", params={"sort": "-totalReplies"})
    assert page["data"][0]["id"] == root["id"]

    status, tree = await instance.client.get(f"{base}/comment-threads/{root['id']}")
    assert status == 200, tree
    assert tree["comment"]["id"] == root["id"]
    assert [c["comment"]["id"] for c in tree["children"]] == [reply["id"]]
    assert tree["children"][0]["children"][0]["comment"]["text"] == "nested"
    # A reply is not a thread.
    status, _ = await instance.client.get(f"{base}/comment-threads/{reply['id']}")
    assert status == 404

    # Only the author, the video's owner or a moderator may delete.
    carol = await instance.user_client("carol")
    status, body = await carol.delete(f"{base}/comments/{reply['id']}")
    assert status == 403 and body["code"] == "not_owner"
    status, _ = await alice.delete(f"{base}/comments/{reply['id']}")
    assert status == 204
    status, _ = await alice.delete(f"{base}/comments/{reply['id']}")
    assert status == 404
    status, tree = await instance.client.get(f"{base}/comment-threads/{root['id']}")
    gone = tree["children"][0]
    assert gone["comment"]["isDeleted"] is True and gone["comment"]["text"] == ""
    assert gone["comment"]["account"] is None and ISO.match(gone["comment"]["deletedAt"])
    assert gone["children"][0]["comment"]["text"] == "nested"  # the thread keeps its shape
    status, body = await bob.post(f"{base}/comments/{reply['id']}", json={"text": "to a deleted one"})
    assert status == 400 and body["code"] == "comment_deleted"
    mod = await instance.user_client("mod", role=Role.MODERATOR)
    status, _ = await mod.delete(f"{base}/comments/{nested['id']}")
    assert status == 204
    status, page = await instance.client.get(f"{base}/comment-threads")
    assert page["totalNotDeletedComments"] == 2


async def test_rules(instance: Instance) -> None:
    alice = await instance.user_client("alice")
    bob = await instance.user_client("bob")
    closed = await new_video(instance, "alice", "Closed video", comments_enabled=False)
    private = await new_video(instance, "alice", "Private video", privacy=Privacy.PRIVATE)
    video = await new_video(instance, "alice", "Open video")

    status, body = await bob.post(f"/api/v1/videos/{closed.uuid}/comment-threads", json={"text": "hi"})
    assert status == 403 and body["code"] == "comments_disabled"
    status, body = await bob.post(f"/api/v1/videos/{private.uuid}/comment-threads", json={"text": "hi"})
    assert status == 404 and body["code"] == "video_not_found"
    status, _ = await instance.client.get(f"/api/v1/videos/{private.uuid}/comment-threads")
    assert status == 404
    status, _ = await instance.client.post(f"/api/v1/videos/{video.uuid}/comment-threads", json={"text": "x"})
    assert status == 401
    for text in ("", "   ", "x" * 10_001):
        status, body = await bob.post(f"/api/v1/videos/{video.uuid}/comment-threads", json={"text": text})
        assert status == 400, text
    status, body = await bob.post(f"/api/v1/videos/{video.uuid}/comments/999999", json={"text": "hi"})
    assert status == 404 and body["code"] == "comment_not_found"
    status, body = await alice.delete(f"/api/v1/videos/{video.uuid}/comments/abc")
    assert status == 404
