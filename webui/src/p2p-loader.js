// The P2P loader: see p2p.js for what it does and when it is loaded.
import { Engine } from "@peertube/p2p-media-loader-hlsjs";
import { endWaitWhenPeersFail } from "./p2p-peer-wait.js";
import { sha256Hex } from "./sha256.js";

const MANIFEST_ATTEMPTS = 10;
const MANIFEST_RETRY_MS = 500;

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function digest(data) {
  // WebCrypto exists only in secure contexts; plain-http instances hash in script.
  if (self.crypto && self.crypto.subtle) return hex(await self.crypto.subtle.digest("SHA-256", data));
  return sha256Hex(new Uint8Array(data));
}

/** The manifest key of a segment: its file name and its inclusive byte range ("start-end"). */
export function manifestKey(segmentUrl, range, size) {
  const file = decodeURIComponent(new URL(segmentUrl, location.href).pathname.split("/").pop());
  const match = /^bytes=(\d+)-(\d+)$/.exec(range || "");
  return { file, range: match ? `${match[1]}-${match[2]}` : `0-${size - 1}` };
}

function manifestLoader(url) {
  let pending = null;
  const fetchOnce = async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await fetch(url, { credentials: "same-origin" });
        if (response.ok) return await response.json();
        if (response.status < 500 || attempt >= MANIFEST_ATTEMPTS) throw new Error(`HTTP ${response.status}`);
      } catch (error) {
        if (attempt >= MANIFEST_ATTEMPTS) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, MANIFEST_RETRY_MS));
    }
  };
  return () => {
    if (!pending) pending = fetchOnce().catch((error) => { pending = null; throw error; });
    return pending;
  };
}

/**
 * The P2P loader for hls.js, or null when this browser cannot run it.
 *
 * `stats` gets `httpBytes` (segments from the origin), `peerBytes` (verified segments from
 * peers), `uploadedBytes`, `rejectedSegments` and `peers`. Call `attach(hls, video, Events)` once
 * hls.js exists (with `Hls.Events`) so the loader follows the playhead and is destroyed with hls.js.
 */
export function createP2P(config, stats) {
  if (!Engine.isSupported()) return null;
  const manifest = manifestLoader(config.p2p.segmentsSha256Url);
  const validate = async (segment, method, peerId) => {
    if (method !== "p2p") return;
    const data = segment.data;
    const { file, range } = manifestKey(segment.url, segment.range, data.byteLength);
    const expected = (await manifest())?.[file]?.[range];
    const actual = await digest(data);
    if (!expected || actual !== expected) {
      stats.rejectedSegments += 1;
      console.warn(`P2P: hash mismatch for ${file} bytes ${range} from peer ${peerId}; fetching it over HTTP`);
      throw new Error("segment hash mismatch");
    }
    stats.peerBytes += data.byteLength;
  };
  const iceServers = config.p2p.stunServer ? [{ urls: `stun:${config.p2p.stunServer}` }] : [];
  // The wire protocol and swarm ids are those of PeerTube's player; the scheduling below is
  // tuned so that the origin sends each segment about once to a group of viewers.
  //
  // Priorities count segments from the one playing (0) forward. A segment within
  // requiredSegmentsPriority of the playhead that is not here yet is fetched over HTTP at once,
  // even when a peer holds it; later ones only come from peers (up to p2pDownloadMaxPriority).
  // With 1, a viewer nobody is ahead of keeps one to two segments buffered over HTTP (4 to 8 s
  // with the default 4 s segments), and a viewer behind others fills its buffer from them.
  //
  // At start, while the tracker reports other viewers, HTTP waits for peers: for the first
  // segment up to httpDownloadInitialTimeoutPerSegment, for the whole start-up at most
  // httpDownloadInitialTimeout. A tracker answer with no other viewer (the first one) lifts the
  // wait at once, so the first viewer starts as fast as without the wait; so does the failure
  // of every viewer the tracker listed (p2p-peer-wait.js: connections that close, offers not
  // answered or answers not connected within 1 s).
  //
  // No random HTTP downloads of segments nobody holds yet (httpDownloadProbability 0): they
  // move origin bytes from one viewer to another without saving any, and an HTTP download
  // aborted for a more urgent one is paid in full by the origin.
  const engine = new Engine({
    loader: {
      trackerAnnounce: config.p2p.trackers,
      rtcConfig: { iceServers },
      segmentValidator: validate,
      consumeOnly: Boolean(navigator.connection && navigator.connection.type === "cellular"),
      simultaneousHttpDownloads: 1,
      httpFailedSegmentTimeout: 1000,
      requiredSegmentsPriority: 1,
      httpDownloadInitialTimeout: 4000,
      httpDownloadInitialTimeoutPerSegment: 2000,
      httpDownloadProbability: 0,
      httpDownloadMaxPriority: 9,
      httpDownloadProbabilitySkipIfNoPeers: true,
      p2pDownloadMaxPriority: 50,
      cachedSegmentsCount: 100,
      cachedSegmentExpiration: 86400000,
      // Each byte range gets a URL of its own: Chromium's HTTP cache can stitch a ranged
      // response from partial entries of one URL and hand back a truncated body (see the
      // player's fetch setup), and the library's XHR cannot opt out of the cache.
      skipSegmentBuilderPriority: -1,
      segmentUrlBuilder: (segment) => rangedUrl(segment.url, segment.range),
    },
    segments: { swarmId: config.playlistUrl, forwardSegmentCount: 50 },
  });
  endWaitWhenPeersFail(engine);
  if (swarmPerVideo()) joinOneSwarmPerVideo(engine);
  engine.on("piece_bytes_downloaded", (method, _segment, bytes) => {
    if (method === "http") stats.httpBytes += bytes;
  });
  engine.on("piece_bytes_uploaded", (_method, _segment, bytes) => { stats.uploadedBytes += bytes; });
  engine.on("peer_connect", () => { stats.peers += 1; });
  engine.on("peer_close", () => { stats.peers = Math.max(0, stats.peers - 1); });
  return {
    loader: adaptToHls(engine.createLoaderClass()),
    attach(hls, video, Events) {
      video.addEventListener("seeking", () => engine.abortCurrentRequest());
      hls.on(Events.FRAG_CHANGED, (_event, { frag }) => {
        const range = frag.byteRange && frag.byteRange.length === 2
          ? { offset: frag.byteRange[0], length: frag.byteRange[1] - frag.byteRange[0] }
          : undefined;
        engine.setPlayingSegment(frag.url, range, frag.start, frag.duration);
      });
      hls.on(Events.ERROR, (_event, data) => {
        if (data.details === "bufferStalledError") engine.setPlayingSegmentByCurrentTime(video.currentTime);
      });
      hls.on(Events.DESTROYING, () => { engine.destroy().catch(() => {}); });
    },
  };
}

// A measurement switch for bench/p2p_browser.py (--swarm video), off unless this browser's
// localStorage has shoal-p2p-swarm=video: every rung announces in one swarm per video instead of
// PeerTube's one per rung (its wire contract: a PeerTube player would not find these viewers
// but on the first rung). Left off in normal use.
function swarmPerVideo() {
  try { return localStorage.getItem("shoal-p2p-swarm") === "video"; } catch { return false; }
}

// The loader joins the tracker swarm of the rung it loads (P2PMediaManager.setStreamSwarmId,
// with `${swarmId}+V${index}`) and drops its peers when the rung changes. Giving it the first
// rung's id for every rung keeps one swarm (an infohash the tracker knows) and the peers across
// rung switches; segment ids and the segment maps peers exchange still name each segment's own
// rung, so peers only ask each other for segments they hold.
function joinOneSwarmPerVideo(engine) {
  const p2p = engine.loader && engine.loader.p2pManager;
  if (!p2p || typeof p2p.setStreamSwarmId !== "function") return;
  const setStreamSwarmId = p2p.setStreamSwarmId;
  p2p.setStreamSwarmId = (_streamSwarmId, masterSwarmId) =>
    setStreamSwarmId(`${masterSwarmId}+V0`, masterSwarmId);
}

// hls.js 1.6+ tags fragment contexts with `type: "fragment"`; this loader takes any context with
// a `type` for a playlist. Fragments go to it without the tag, and every callback hands hls.js
// back its own context object.
function adaptToHls(Loader) {
  return class extends Loader {
    constructor() {
      super();
      const load = this.load;
      this.load = (context, config, callbacks) => {
        if (!context.frag || !context.type) return load(context, config, callbacks);
        const { type: _type, ...untagged } = context;
        const wrapped = {};
        for (const [name, callback] of Object.entries(callbacks)) {
          wrapped[name] = typeof callback === "function"
            ? (...args) => callback(...args.map((arg) => (arg === untagged ? context : arg)))
            : callback;
        }
        return load(untagged, config, wrapped);
      };
    }
  };
}

function rangedUrl(url, range) {
  const match = /^bytes=(\d+-\d+)$/.exec(range || "");
  if (!match) return url;
  return `${url}${url.includes("?") ? "&" : "?"}range=${match[1]}`;
}
