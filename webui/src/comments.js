// The comment thread of a watch page: list threads, post, reply, delete own (moderators: any).
// Comment text is shown as text (never parsed as HTML).
import { api, showError } from "./api.js";

function commentItem(section, comment, videoId) {
  const li = document.createElement("li");
  li.className = "comment";
  li.dataset.commentId = comment.id;
  const head = document.createElement("p");
  head.className = "comment-head small";
  const who = comment.account ? (comment.account.displayName || comment.account.name) : "someone";
  head.textContent = `${who} · ${new Date(comment.createdAt).toLocaleString()}`;
  const body = document.createElement("p");
  body.className = "comment-text";
  body.textContent = comment.isDeleted ? "(deleted)" : comment.text;
  li.append(head, body);
  const me = section.dataset.me;
  const moderator = section.dataset.moderator === "true";
  if (me && !comment.isDeleted) {
    const actions = document.createElement("div");
    actions.className = "comment-actions";
    const reply = document.createElement("button");
    reply.type = "button";
    reply.className = "link";
    reply.textContent = "Reply";
    reply.addEventListener("click", () => {
      if (li.querySelector(":scope > form")) return;
      const form = replyForm(videoId, comment.id, () => loadThreads(section));
      li.insertBefore(form, li.querySelector(":scope > ol"));
      form.querySelector("textarea").focus();
    });
    actions.append(reply);
    if (moderator || (comment.account && comment.account.name === me && !comment.account.host?.includes("@"))) {
      const del = document.createElement("button");
      del.type = "button";
      del.className = "link danger";
      del.textContent = "Delete";
      del.addEventListener("click", async () => {
        if (!window.confirm("Delete this comment?")) return;
        try { await api("DELETE", `/api/v1/videos/${videoId}/comments/${comment.id}`); await loadThreads(section); }
        catch (e) { del.title = e.message; }
      });
      actions.append(del);
    }
    li.append(actions);
  }
  return li;
}

function replyForm(videoId, parentId, done) {
  const form = document.createElement("form");
  form.className = "comment-form reply";
  const label = document.createElement("label");
  label.className = "visually-hidden";
  label.textContent = "Reply";
  const area = document.createElement("textarea");
  area.name = "text";
  area.rows = 2;
  area.required = true;
  area.maxLength = 10000;
  area.placeholder = "Write a reply";
  label.append(area);
  const button = document.createElement("button");
  button.type = "submit";
  button.textContent = "Reply";
  const error = document.createElement("p");
  error.className = "form-error";
  error.hidden = true;
  form.append(label, area, button, error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", `/api/v1/videos/${videoId}/comments/${parentId}`, { text: area.value });
      await done();
    } catch (e) { showError(error, e); }
  });
  return form;
}

function renderTree(section, tree, videoId) {
  const li = commentItem(section, tree.comment, videoId);
  if (tree.children && tree.children.length) {
    const ol = document.createElement("ol");
    ol.className = "replies";
    for (const child of tree.children) ol.append(renderTree(section, child, videoId));
    li.append(ol);
  }
  return li;
}

async function loadThreads(section) {
  const videoId = section.dataset.video;
  const list = section.querySelector("#threads");
  if (!list) return;
  const { data } = await api("GET", `/api/v1/videos/${videoId}/comment-threads?count=50&sort=-createdAt`);
  const items = [];
  for (const root of data.data || []) {
    if (root.totalReplies > 0) {
      const { data: tree } = await api("GET", `/api/v1/videos/${videoId}/comment-threads/${root.id}`);
      items.push(renderTree(section, tree, videoId));
    } else {
      items.push(renderTree(section, { comment: root, children: [] }, videoId));
    }
  }
  list.replaceChildren(...items);
}

export function setupComments() {
  const section = document.getElementById("comments");
  if (!section || section.dataset.enabled !== "true") return;
  const form = section.querySelector("form.comment-form");
  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const area = form.querySelector("textarea");
      try {
        await api("POST", `/api/v1/videos/${section.dataset.video}/comment-threads`, { text: area.value });
        area.value = "";
        await loadThreads(section);
      } catch (e) { area.title = e.message; }
    });
  }
  loadThreads(section).catch(() => { /* the list stays empty */ });
}
