// Page behaviours shared by every page: API forms, login, follow, ratings, share box, library and
// admin actions, comments. Pages stay readable without it.
import { api, sendThumbnail, showError } from "./api.js";
import { setupComments } from "./comments.js";

function formValues(form) {
  const values = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled || el.type === "submit" || el.name === "csrf_token") continue;
    const type = el.dataset.type;
    if (el.type === "checkbox") { values[el.name] = el.checked; continue; }
    let value = el.value;
    if (type === "int") value = parseInt(value, 10);
    else if (type === "list") value = value.split(",").map((s) => s.trim()).filter(Boolean);
    else if (value === "" && !el.required) continue;
    values[el.name] = value;
  }
  return values;
}

async function formLogin(username, password, next) {
  const body = new URLSearchParams({ username, password, next: next || "/" });
  const response = await fetch("/login", { method: "POST", body, redirect: "manual", credentials: "same-origin" });
  if (response.type === "opaqueredirect" || response.status === 303) return;
  let detail = "Login failed.";
  try { detail = (await response.json()).detail || detail; } catch { /* not JSON */ }
  throw new Error(detail);
}

function setupLogin() {
  const form = document.getElementById("login-form");
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = form.querySelector(".form-error");
    showError(error, null);
    const next = form.elements.next.value || "/";
    try {
      await formLogin(form.elements.username.value, form.elements.password.value, next);
      window.location.assign(next);
    } catch (e) { showError(error, e); }
  });
}

function setupApiForms() {
  for (const form of document.querySelectorAll("form[data-api]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const error = form.querySelector(".form-error");
      const button = form.querySelector("button[type=submit]");
      showError(error, null);
      button && (button.disabled = true);
      const values = formValues(form);
      try {
        const { data } = await api(form.dataset.method || "POST", form.dataset.api, values);
        if (form.id === "signup-form") {
          try {
            await formLogin(values.username, values.password, "/my-library");
            window.location.assign("/my-library");
          } catch {
            window.location.assign("/login");
          }
          return;
        }
        if (form.id === "invite-form" && data && data.temporaryPassword) {
          const out = form.querySelector(".form-result");
          out.textContent = `Invited ${data.user ? data.user.username : ""}: temporary password ${data.temporaryPassword}`;
          out.hidden = false;
          return;
        }
        window.location.assign(form.dataset.done || window.location.pathname);
      } catch (e) {
        showError(error, e);
      } finally {
        button && (button.disabled = false);
      }
    });
  }
}

async function setupFollow() {
  const buttons = document.querySelectorAll("button.follow[data-handle]");
  if (!buttons.length) return;
  for (const button of buttons) {
    const handle = button.dataset.handle;
    let following = false;
    const paint = () => {
      button.textContent = following ? "Following" : "Follow";
      button.setAttribute("aria-pressed", String(following));
    };
    try {
      const { data } = await api("GET", `/api/v1/users/me/subscriptions/exist?uris=${encodeURIComponent(handle)}`);
      following = Boolean(data && data[handle]);
    } catch { /* shown as not following */ }
    paint();
    button.addEventListener("click", async () => {
      try {
        if (following) await api("DELETE", `/api/v1/users/me/subscriptions/${encodeURIComponent(handle)}`);
        else await api("POST", "/api/v1/users/me/subscriptions", { uri: handle });
        following = !following;
        paint();
      } catch (e) { button.title = e.message; }
    });
  }
}

function setupRating() {
  const article = document.querySelector("article.watch");
  if (!article) return;
  const id = article.dataset.videoId;
  const buttons = article.querySelectorAll("button.rate");
  let current = "none";
  const paint = () => buttons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.rating === current)));
  buttons.forEach((button) => button.addEventListener("click", async () => {
    const rating = current === button.dataset.rating ? "none" : button.dataset.rating;
    try {
      await api("PUT", `/api/v1/videos/${id}/rate`, { rating });
      const { data } = await api("GET", `/api/v1/videos/${id}`);
      document.getElementById("likes").textContent = data.likes;
      document.getElementById("dislikes").textContent = data.dislikes;
      current = rating;
      paint();
    } catch (e) { button.title = e.message; }
  }));
}

function setupShare() {
  const link = document.getElementById("share-link");
  const atTime = document.getElementById("share-at-time");
  if (!link || !atTime) return;
  const base = link.value;
  const update = () => {
    const video = document.getElementById("video");
    const t = video ? Math.floor(video.currentTime) : 0;
    link.value = atTime.checked && t > 0 ? `${base}?start=${t}` : base;
  };
  atTime.addEventListener("change", update);
  document.querySelector("details.share")?.addEventListener("toggle", update);
  for (const field of document.querySelectorAll("#share-link, #share-embed")) {
    field.addEventListener("focus", () => field.select());
  }
}

function setupLibrary() {
  for (const button of document.querySelectorAll("[data-delete-video]")) {
    button.addEventListener("click", async () => {
      if (!window.confirm("Delete this video?")) return;
      try {
        await api("DELETE", `/api/v1/videos/${button.dataset.deleteVideo}`);
        button.closest("li")?.remove();
      } catch (e) { button.title = e.message; }
    });
  }
  const rows = document.querySelectorAll("[data-progress-video]");
  if (!rows.length) return;
  const poll = async () => {
    let pending = 0;
    for (const badge of document.querySelectorAll("[data-progress-video]")) {
      try {
        const { data } = await api("GET", `/api/v1/videos/${badge.dataset.progressVideo}`);
        if (data.state.id === 1) { badge.textContent = "Published"; badge.className = "badge ok"; badge.removeAttribute("data-progress-video"); }
        else if (data.failureReason) { badge.textContent = `Failed: ${data.failureReason}`; badge.className = "badge bad"; badge.removeAttribute("data-progress-video"); }
        else { badge.textContent = `Processing ${data.progress}%`; pending++; }
      } catch { /* try again later */ pending++; }
    }
    if (pending) setTimeout(poll, 2000);
  };
  setTimeout(poll, 2000);
}

function setupAdmin() {
  const error = document.getElementById("admin-error");
  const act = async (button, method, path, body) => {
    showError(error, null);
    try { await api(method, path, body); window.location.reload(); } catch (e) { showError(error, e); }
  };
  for (const b of document.querySelectorAll("[data-user-block]")) {
    b.addEventListener("click", () => act(b, "POST", `/api/v1/users/${b.dataset.userBlock}/block`, {}));
  }
  for (const b of document.querySelectorAll("[data-user-unblock]")) {
    b.addEventListener("click", () => act(b, "POST", `/api/v1/users/${b.dataset.userUnblock}/unblock`));
  }
  for (const b of document.querySelectorAll("[data-user-delete]")) {
    b.addEventListener("click", () => window.confirm("Delete this user and all their videos?") && act(b, "DELETE", `/api/v1/users/${b.dataset.userDelete}`));
  }
  for (const s of document.querySelectorAll("[data-user-role]")) {
    s.addEventListener("change", () => act(s, "PUT", `/api/v1/users/${s.dataset.userRole}`, { role: parseInt(s.value, 10) }));
  }
  for (const b of document.querySelectorAll("[data-registration-accept]")) {
    b.addEventListener("click", () => act(b, "POST", `/api/v1/users/registrations/${b.dataset.registrationAccept}/accept`, {}));
  }
  for (const b of document.querySelectorAll("[data-registration-reject]")) {
    b.addEventListener("click", () => window.confirm("Reject this sign-up? The account is deleted.") && act(b, "POST", `/api/v1/users/registrations/${b.dataset.registrationReject}/reject`, {}));
  }
  for (const b of document.querySelectorAll("[data-job-retry]")) {
    b.addEventListener("click", () => act(b, "POST", `/api/v1/jobs/${b.dataset.jobRetry}/retry`));
  }
}

function setupThumbnail() {
  const form = document.getElementById("thumbnail-form");
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = form.querySelector(".form-error");
    const button = form.querySelector("button[type=submit]");
    showError(error, null);
    button.disabled = true;
    try {
      if (!(await sendThumbnail(form.dataset.videoId, form.elements.thumbnailfile))) {
        throw new Error("Choose a picture first.");
      }
      // Same address, new picture: ask past the cache.
      const image = document.getElementById("current-thumbnail");
      if (image) { image.src = `${image.dataset.src}?v=${Date.now()}`; image.hidden = false; }
      const done = form.querySelector(".form-result");
      done.textContent = "Thumbnail replaced.";
      done.hidden = false;
    } catch (e) {
      showError(error, e);
    } finally {
      button.disabled = false;
    }
  });
}

setupLogin();
setupApiForms();
setupThumbnail();
setupFollow();
setupRating();
setupShare();
setupLibrary();
setupAdmin();
setupComments();
