// The P2P boundary. The P2P engineer replaces `createLoader` with one that fetches segments from
// other viewers (WebRTC through the instance's tracker), checking each against the SHA-256
// manifest. It gets hls.js's default loader and the player config, and returns the loader class
// hls.js should use (`config.loader`), or null to stay on plain HTTP.
export function createLoader(_DefaultLoader, _config) {
  return null;
}
