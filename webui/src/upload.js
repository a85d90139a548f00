// The upload page: pick or drop a file, send it with PeerTube's resumable protocol (chunks with
// Content-Range, resuming from the server's Range), then follow processing over the events stream.
import { api, ApiError, csrfToken, sendThumbnail, showError } from "./api.js";

const CHUNK = 1024 * 1024;
const form = document.getElementById("upload-form");
let chosen = null;

function pick(file) {
  chosen = file;
  document.getElementById("file-name").textContent = `${file.name} (${(file.size / 1048576).toFixed(1)} MB)`;
  const title = form.elements.name;
  if (!title.value) title.value = file.name.replace(/\.[^.]+$/, "").slice(0, 120).padEnd(3, "_");
}

async function sendChunks(location, file, onProgress) {
  let offset = 0;
  while (offset < file.size) {
    const end = Math.min(offset + CHUNK, file.size);
    const response = await fetch(location, {
      method: "PUT",
      headers: { "Content-Range": `bytes ${offset}-${end - 1}/${file.size}`, "X-CSRF-Token": csrfToken(),
        "Content-Type": "application/octet-stream" },
      body: file.slice(offset, end),
      credentials: "same-origin",
    });
    if (response.status === 308) {
      const range = response.headers.get("Range");
      offset = range ? parseInt(range.split("-")[1], 10) + 1 : end;
      onProgress(offset / file.size);
      continue;
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, data);
    onProgress(1);
    return data.video;
  }
  throw new Error("The upload ended without an answer.");
}

function follow(video) {
  const bar = document.getElementById("processing-progress");
  const state = document.getElementById("processing-state");
  const error = document.getElementById("processing-error");
  let finished = false;
  const show = (event) => {
    if (finished) return;
    bar.value = event.progress || 0;
    state.textContent = `${event.activity} ${event.progress || 0}%`;
    if (event.stateName === "failed") {
      finished = true;
      showError(error, new Error(event.failureReason || "Processing failed."));
      state.textContent = "failed";
    } else if (event.stateName === "published") {
      finished = true;
      bar.value = 100;
      document.getElementById("upload-done").hidden = false;
    }
  };
  // The events stream can drop (a proxy, a missed heartbeat on a busy machine, its time limit):
  // then ask the API until processing ends, so the page always learns the outcome.
  const poll = async () => {
    if (finished) return;
    try {
      const { data } = await api("GET", `/api/v1/videos/${video.id}`);
      const name = data.state.id === 1 ? "published" : (data.failureReason ? "failed" : "processing");
      show({ stateName: name, activity: name, progress: data.progress ?? 0, failureReason: data.failureReason });
    } catch { /* try again */ }
    if (!finished) setTimeout(poll, 2000);
  };
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${window.location.host}/api/v1/videos/${video.id}/events`);
  socket.addEventListener("message", (message) => show(JSON.parse(message.data)));
  socket.addEventListener("close", () => { if (!finished) setTimeout(poll, 1000); });
}

async function submit(event) {
  event.preventDefault();
  const error = form.querySelector(".form-error");
  showError(error, null);
  const file = chosen;
  if (!file) { showError(error, new Error("Choose a file first.")); return; }
  const tags = form.elements.tags.value.split(",").map((t) => t.trim()).filter(Boolean);
  const body = {
    channelId: parseInt(form.elements.channelId.value, 10),
    name: form.elements.name.value,
    description: form.elements.description.value,
    privacy: parseInt(form.elements.privacy.value, 10),
    tags,
    filename: file.name,
  };
  const button = document.getElementById("upload-button");
  button.disabled = true;
  try {
    const started = await api("POST", "/api/v1/videos/upload-resumable", body, {
      "X-Upload-Content-Length": String(file.size),
      "X-Upload-Content-Type": file.type || "application/octet-stream",
    });
    const location = started.headers.get("Location");
    document.getElementById("upload-status").hidden = false;
    const progress = document.getElementById("upload-progress");
    const percent = document.getElementById("upload-percent");
    const video = await sendChunks(location, file, (ratio) => {
      progress.value = Math.round(ratio * 100);
      percent.textContent = `${Math.round(ratio * 100)}%`;
    });
    document.getElementById("watch-link").href = `/w/${video.shortUUID}`;
    document.getElementById("edit-link").href = `/videos/edit/${video.shortUUID}`;
    form.hidden = true;
    follow(video);
    try {
      if (await sendThumbnail(video.id, form.elements.thumbnailfile)) {
        document.getElementById("thumbnail-state").textContent = "Your thumbnail is set.";
      }
    } catch (e) {
      // The video is uploaded; only the picture was refused (it can be set again when editing).
      showError(document.getElementById("thumbnail-error"), e);
    }
  } catch (e) {
    showError(error, e);
    button.disabled = false;
  }
}

if (form) {
  const input = document.getElementById("file");
  const drop = document.getElementById("drop");
  input.addEventListener("change", () => input.files[0] && pick(input.files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files[0]) pick(e.dataTransfer.files[0]);
  });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  form.addEventListener("submit", submit);
}
