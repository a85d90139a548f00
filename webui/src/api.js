// The REST API with the session cookie: JSON in and out, CSRF header on state changes.

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `Request failed (${status})`);
    this.status = status;
    this.problem = problem;
  }
}

export async function api(method, path, body, extraHeaders = {}) {
  const headers = { Accept: "application/json", ...extraHeaders };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken();
  let payload;
  if (body !== undefined && body !== null) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return { status: response.status, data, headers: response.headers };
}

export function showError(element, error) {
  if (!element) return;
  element.textContent = error ? (error.message || String(error)) : "";
  element.hidden = !error;
}

// A multipart POST (files) with the CSRF header; errors as ApiError like api().
export async function postForm(path, formData) {
  const response = await fetch(path, {
    method: "POST",
    headers: { Accept: "application/json", "X-CSRF-Token": csrfToken() },
    body: formData,
    credentials: "same-origin",
  });
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return { status: response.status, data };
}

// Send the picture chosen in ``input`` as the video's thumbnail (nothing when none is chosen).
export async function sendThumbnail(videoId, input) {
  if (!input || !input.files || !input.files[0]) return false;
  const formData = new FormData();
  formData.append("thumbnailfile", input.files[0]);
  await postForm(`/api/v1/videos/${videoId}/thumbnail`, formData);
  return true;
}
