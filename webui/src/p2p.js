// Segments from other viewers: p2p-media-loader (PeerTube's fork, so PeerTube players and ours
// join the same swarms) exchanges HLS segments over WebRTC data channels, with peers found
// through this instance's WebSocket tracker only. Every segment received from a peer is hashed
// and compared with the video's SHA-256 manifest ({file: {"start-end": hex}}) before hls.js
// sees it; a mismatch drops the segment (and the peer) and the loader fetches it over HTTP.
//
// This module is small and always loaded; the loader itself (p2p-loader.js, with the WebRTC and
// tracker code) is fetched only when a page will use it.

const PREFERENCE_KEY = "shoal-p2p";

/** Whether this viewer allows P2P (a choice remembered in this browser; on unless turned off). */
export function viewerAllowsP2P() {
  try { return localStorage.getItem(PREFERENCE_KEY) !== "off"; } catch { return true; }
}

/** Remember the viewer's choice; it applies from the next page load. */
export function setViewerAllowsP2P(on) {
  try { localStorage.setItem(PREFERENCE_KEY, on ? "on" : "off"); } catch { /* storage disabled */ }
}

/** Whether the page may use P2P at all: the instance offers it for this video and P2P can run here. */
export function p2pPossible(config) {
  return Boolean(
    config && config.p2p && config.p2p.trackers && config.p2p.trackers.length && config.p2p.segmentsSha256Url
    && self.RTCPeerConnection && self.MediaSource,
  );
}

/**
 * The P2P loader for hls.js (see p2p-loader.js), or null when the instance does not offer P2P
 * for this video, this viewer turned it off, or this browser cannot run it.
 */
export async function loadP2P(config, stats) {
  if (!p2pPossible(config) || !viewerAllowsP2P()) return null;
  try {
    const { createP2P } = await import("./p2p-loader.js");
    return createP2P(config, stats);
  } catch (error) {
    console.warn("P2P unavailable, playing over HTTP only:", error);
    return null;
  }
}

/** The tallest rung not taller than the player in device pixels (the lowest rung when none fits). */
export function p2pStartLevel(levels, element) {
  const fits = Math.max(element.clientHeight || 0, 360) * (self.devicePixelRatio || 1);
  let best = -1;
  levels.forEach((level, index) => {
    const height = level.height || 0;
    if (height > fits) return;
    if (best < 0 || height > (levels[best].height || 0)
      || (height === (levels[best].height || 0) && level.bitrate > levels[best].bitrate)) best = index;
  });
  if (best >= 0) return best;
  return levels.reduce((low, level, index) => ((level.height || 0) < (levels[low].height || 0) ? index : low), 0);
}
