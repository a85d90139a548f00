// The Shoal player: hls.js with adaptive quality, a manual quality menu, speed, fullscreen,
// keyboard shortcuts, storyboard trick-play, resume position, a stats overlay, view reporting,
// and segments shared between viewers (P2P) where the instance offers it.
import Hls, { FetchLoader } from "hls.js";
import { api, csrfToken } from "./api.js";
import { loadP2P, p2pPossible, p2pStartLevel, setViewerAllowsP2P, viewerAllowsP2P } from "./p2p.js";

const config = JSON.parse(document.getElementById("player-config")?.textContent || "null");
const root = document.getElementById("player");
const video = document.getElementById("video");

function fmt(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}:${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}` : `${m}:${String(r).padStart(2, "0")}`;
}

function fail(message) {
  const el = document.getElementById("player-error");
  el.textContent = message;
  el.hidden = false;
}

async function fileToken() {
  const { data } = await api("POST", `/api/v1/videos/${config.uuid}/token`, {});
  return data.files.token;
}

function withToken(url, token) {
  if (!token) return url;
  return `${url}${url.includes("?") ? "&" : "?"}videoFileToken=${encodeURIComponent(token)}`;
}

const fetchSupported = () => Boolean(self.fetch && self.AbortController && self.ReadableStream && self.Request);

const resumeKey = () => `shoal-resume-${config.uuid}`;

async function start() {
  if (!config || !video) return;
  if (!config.playlistUrl) { fail("This video has no playable files yet."); return; }
  let token = null;
  if (config.needsToken) {
    try { token = await fileToken(); } catch { fail("You may not play this video."); return; }
  }
  const source = withToken(config.playlistUrl, token);
  // httpBytes: segments from the origin; peerBytes: verified segments from other viewers.
  const stats = { bytes: 0, httpBytes: 0, peerBytes: 0, uploadedBytes: 0, rejectedSegments: 0, peers: 0, p2p: false };
  let hls = null;
  let p2p = null;
  if (Hls.isSupported()) {
    // Segments are byte ranges of one file per rung. Chromium's HTTP cache stitches a range
    // request from partial cache entries and sometimes hands back a truncated body, which breaks
    // a quality switch back to an already-played rung; hls.js keeps what it needs in the media
    // buffer, so ranged requests skip the HTTP cache (playlists stay cacheable).
    const baseLoader = fetchSupported() ? FetchLoader : Hls.DefaultConfig.loader;
    const hlsConfig = {
      capLevelToPlayerSize: false,
      startLevel: -1,
      enableWorker: true,
      loader: baseLoader,
      fetchSetup: (context, init) => {
        const url = token && !context.url.includes("videoFileToken=") ? withToken(context.url, token) : context.url;
        return new Request(url, init.headers.has("Range") ? { ...init, cache: "no-store" } : init);
      },
    };
    // Never for videos that need a file token (private, internal): those have no P2P config.
    p2p = token ? null : await loadP2P(config, stats);
    if (p2p) hlsConfig.loader = p2p.loader;
    stats.p2p = Boolean(p2p);
    if (token) {
      hlsConfig.xhrSetup = (xhr, url) => {
        if (!url.includes("videoFileToken=")) xhr.open("GET", withToken(url, token), true);
      };
    }
    hls = new Hls(hlsConfig);
    hls.on(Hls.Events.FRAG_LOADED, (_e, data) => {
      const loaded = data.frag.stats.loaded || 0;
      stats.bytes += loaded;
      if (!p2p) stats.httpBytes += loaded;
    });
    if (p2p) p2p.attach(hls, video, Hls.Events);
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      // With P2P, start on the rung other viewers most likely hold (the tallest one the player
      // shows in full) rather than on hls.js's bandwidth guess, usually a low rung: a start on a
      // rung nobody plays costs origin bytes no peer can save, and peers are found per rung.
      if (p2p) hls.startLevel = p2pStartLevel(hls.levels, video);
      buildQualityMenu(hls);
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, () => paintQuality(hls));
    hls.on(Hls.Events.ERROR, (_e, data) => {
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.NETWORK_ERROR) hls.startLoad();
      else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      else fail(`Playback failed: ${data.details}`);
    });
    hls.loadSource(source);
    hls.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = source;
  } else {
    fail("This browser cannot play HLS video.");
    return;
  }
  window.shoalPlayer = { hls, video, stats };
  setupControls(hls, stats);
  setupP2PToggle(stats);
  setupTrickPlay();
  setupViews(stats);
  setupResume();
  if (config.muted) video.muted = true;
  if (config.autoplay) video.play().catch(() => { video.muted = true; video.play().catch(() => {}); });
}

function buildQualityMenu(hls) {
  const select = document.getElementById("quality");
  const options = [new Option("Auto", "-1")];
  hls.levels
    .map((level, index) => ({ level, index }))
    .sort((a, b) => (b.level.height || 0) - (a.level.height || 0))
    .forEach(({ level, index }) => options.push(new Option(level.height ? `${level.height}p` : `${Math.round(level.bitrate / 1000)} kb/s`, String(index))));
  select.replaceChildren(...options);
  select.value = "-1";
  select.addEventListener("change", () => {
    const level = parseInt(select.value, 10);
    if (level === -1) { hls.currentLevel = -1; hls.loadLevel = -1; }
    else { hls.currentLevel = level; }
    paintQuality(hls);
  });
}

function paintQuality(hls) {
  const select = document.getElementById("quality");
  const auto = select.options[0];
  const current = hls.levels[hls.currentLevel];
  auto.textContent = hls.autoLevelEnabled && current ? `Auto (${current.height}p)` : "Auto";
  root.dataset.level = String(hls.currentLevel);
  root.dataset.height = current ? String(current.height) : "";
}

function setupControls(hls, stats) {
  const play = root.querySelector('[data-act="play"]');
  const mute = root.querySelector('[data-act="mute"]');
  const seek = document.getElementById("seek");
  const time = document.getElementById("time");
  const speed = document.getElementById("speed");
  const statsBox = document.getElementById("stats");
  const statsButton = root.querySelector('[data-act="stats"]');
  const toggle = () => (video.paused ? video.play().catch(() => {}) : video.pause());
  const fullscreen = () => (document.fullscreenElement ? document.exitFullscreen() : root.requestFullscreen?.());
  const toggleStats = () => {
    statsBox.hidden = !statsBox.hidden;
    statsButton.setAttribute("aria-pressed", String(!statsBox.hidden));
  };
  play.addEventListener("click", toggle);
  video.addEventListener("click", toggle);
  mute.addEventListener("click", () => { video.muted = !video.muted; });
  speed.addEventListener("change", () => { video.playbackRate = parseFloat(speed.value); });
  root.querySelector('[data-act="fullscreen"]').addEventListener("click", fullscreen);
  statsButton.addEventListener("click", toggleStats);
  seek.addEventListener("input", () => { video.currentTime = parseFloat(seek.value); });
  video.addEventListener("play", () => { play.textContent = "Pause"; play.setAttribute("aria-label", "Pause (k)"); });
  video.addEventListener("pause", () => { play.textContent = "Play"; play.setAttribute("aria-label", "Play (k)"); });
  video.addEventListener("volumechange", () => { mute.textContent = video.muted ? "Unmute" : "Mute"; });
  video.addEventListener("loadedmetadata", () => { seek.max = String(video.duration || config.duration); });
  video.addEventListener("timeupdate", () => {
    seek.value = String(video.currentTime);
    time.textContent = `${fmt(video.currentTime)} / ${fmt(video.duration || config.duration)}`;
  });
  root.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLSelectElement || event.altKey || event.ctrlKey || event.metaKey) return;
    const keys = {
      " ": toggle, k: toggle, f: fullscreen, m: () => { video.muted = !video.muted; }, i: toggleStats,
      ArrowLeft: () => { video.currentTime = Math.max(0, video.currentTime - 5); },
      ArrowRight: () => { video.currentTime = Math.min(video.duration || 0, video.currentTime + 5); },
      j: () => { video.currentTime = Math.max(0, video.currentTime - 10); },
      l: () => { video.currentTime = Math.min(video.duration || 0, video.currentTime + 10); },
      "<": () => { video.playbackRate = Math.max(0.25, video.playbackRate - 0.25); speed.value = String(video.playbackRate); },
      ">": () => { video.playbackRate = Math.min(2, video.playbackRate + 0.25); speed.value = String(video.playbackRate); },
    };
    const action = keys[event.key];
    if (action && !(event.key === " " && event.target instanceof HTMLButtonElement)) {
      event.preventDefault();
      action();
    }
  });
  setInterval(() => {
    if (statsBox.hidden) return;
    let buffered = 0;
    for (let i = 0; i < video.buffered.length; i++) {
      if (video.buffered.start(i) <= video.currentTime && video.currentTime <= video.buffered.end(i)) {
        buffered = video.buffered.end(i) - video.currentTime;
      }
    }
    const level = hls ? hls.levels[hls.currentLevel] : null;
    statsBox.textContent = [
      `rung      ${level ? `${level.height}p @ ${Math.round(level.bitrate / 1000)} kb/s` : "native"}${hls && hls.autoLevelEnabled ? " (auto)" : ""}`,
      `buffer    ${buffered.toFixed(1)} s`,
      `download  ${(stats.bytes / 1048576).toFixed(2)} MB`,
      `from http ${(stats.httpBytes / 1048576).toFixed(2)} MB`,
      `from p2p  ${stats.p2p ? `${(stats.peerBytes / 1048576).toFixed(2)} MB (${stats.peers} peer${stats.peers === 1 ? "" : "s"}, ${(stats.uploadedBytes / 1048576).toFixed(2)} MB sent)` : "off"}`,
      `bandwidth ${hls ? Math.round(hls.bandwidthEstimate / 1000) : "?"} kb/s`,
      `dropped   ${video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality().droppedVideoFrames : "?"} frames`,
    ].join("\n");
  }, 500);
}

async function setupTrickPlay() {
  if (!config.storyboard) return;
  let cues = [];
  try {
    const response = await fetch(config.storyboard, { credentials: "same-origin" });
    if (!response.ok) return;
    cues = parseVtt(await response.text(), new URL(config.storyboard, window.location.href));
  } catch { return; }
  if (!cues.length) return;
  const seek = document.getElementById("seek");
  const box = root.querySelector(".trick");
  const img = box.querySelector(".trick-img");
  const label = box.querySelector(".trick-time");
  seek.addEventListener("mousemove", (event) => {
    const rect = seek.getBoundingClientRect();
    const ratio = Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width));
    const at = ratio * (video.duration || config.duration);
    const cue = cues.find((c) => c.start <= at && at < c.end) || cues[cues.length - 1];
    img.style.width = `${cue.w}px`;
    img.style.height = `${cue.h}px`;
    img.style.backgroundImage = `url("${cue.url}")`;
    img.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
    box.style.left = `${Math.max(0, Math.min(rect.width - cue.w, ratio * rect.width - cue.w / 2))}px`;
    label.textContent = fmt(at);
    box.hidden = false;
  });
  seek.addEventListener("mouseleave", () => { box.hidden = true; });
}

function parseTime(text) {
  const parts = text.trim().split(":").map(parseFloat);
  return parts.reduce((acc, v) => acc * 60 + v, 0);
}

export function parseVtt(text, base) {
  const cues = [];
  const blocks = text.replace(/\r/g, "").split("\n\n");
  for (const block of blocks) {
    const lines = block.split("\n").filter(Boolean);
    const timing = lines.findIndex((l) => l.includes("-->"));
    if (timing < 0 || !lines[timing + 1]) continue;
    const [from, to] = lines[timing].split("-->");
    const target = lines[timing + 1].trim();
    const [file, hash] = target.split("#xywh=");
    if (!hash) continue;
    const [x, y, w, h] = hash.split(",").map((n) => parseInt(n, 10));
    cues.push({ start: parseTime(from), end: parseTime(to), url: new URL(file, base).href, x, y, w, h });
  }
  return cues;
}

// The P2P switch: shown when the instance offers P2P for this video; the choice is remembered
// in this browser and applies the next time a video loads.
function setupP2PToggle(stats) {
  const button = root.querySelector('[data-act="p2p"]');
  if (!button) return;
  if (!p2pPossible(config)) { button.hidden = true; return; }
  button.hidden = false;
  const paint = () => {
    const wanted = viewerAllowsP2P();
    button.textContent = wanted ? "P2P on" : "P2P off";
    button.setAttribute("aria-pressed", String(wanted));
    button.title = wanted === stats.p2p
      ? "Share video with other viewers (peer-to-peer)"
      : "Peer-to-peer sharing changes the next time a video loads";
  };
  button.addEventListener("click", () => { setViewerAllowsP2P(!viewerAllowsP2P()); paint(); });
  paint();
}

// A view counts after 5 s of playback. The same report (and later ones, every 30 s of playback
// and when the page goes away) carries the bytes received since the previous report, from the
// origin and from peers, for the instance's P2P ratio.
const REPORT_EVERY = 30;

function setupViews(stats) {
  let watched = 0;
  let last = null;
  let reportedAt = null;
  const sent = { http: 0, peer: 0 };
  const report = (keepalive = false) => {
    const httpBytes = stats.httpBytes - sent.http;
    const peerBytes = stats.peerBytes - sent.peer;
    sent.http = stats.httpBytes;
    sent.peer = stats.peerBytes;
    const body = { currentTime: video.currentTime, httpBytes, peerBytes };
    if (keepalive) {
      fetch(`/api/v1/videos/${config.uuid}/views`, {
        method: "POST",
        keepalive: true,
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
        body: JSON.stringify(body),
      }).catch(() => {});
    } else {
      api("POST", `/api/v1/videos/${config.uuid}/views`, body).catch(() => {});
    }
  };
  video.addEventListener("timeupdate", () => {
    if (video.paused) { last = video.currentTime; return; }
    if (last !== null && video.currentTime > last && video.currentTime - last < 2) watched += video.currentTime - last;
    last = video.currentTime;
    if ((reportedAt === null && watched >= 5) || (reportedAt !== null && watched - reportedAt >= REPORT_EVERY)) {
      reportedAt = watched;
      report();
    }
  });
  const flush = (keepalive) => {
    if (reportedAt !== null && (stats.httpBytes > sent.http || stats.peerBytes > sent.peer)) report(keepalive);
  };
  video.addEventListener("ended", () => flush(false));
  addEventListener("pagehide", () => flush(true));
}

function setupResume() {
  if (config.start > 0) {
    video.addEventListener("loadedmetadata", () => { video.currentTime = config.start; }, { once: true });
  } else {
    const saved = parseFloat(localStorage.getItem(resumeKey()) || "0");
    if (saved > 5 && saved < (config.duration || Infinity) - 5) {
      video.addEventListener("loadedmetadata", () => { video.currentTime = saved; }, { once: true });
    }
  }
  let lastSave = 0;
  video.addEventListener("timeupdate", () => {
    if (Math.abs(video.currentTime - lastSave) < 5) return;
    lastSave = video.currentTime;
    localStorage.setItem(resumeKey(), String(Math.floor(video.currentTime)));
  });
  video.addEventListener("ended", () => localStorage.removeItem(resumeKey()));
}

start();
