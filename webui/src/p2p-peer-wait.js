// Ending the loader's start-up wait for peers once no listed peer can serve.
//
// While the tracker lists other viewers, p2p-media-loader (PeerTube's fork, 1.0.20) holds back
// HTTP for the first segments (httpDownloadInitialTimeoutPerSegment / httpDownloadInitialTimeout
// in p2p-loader.js) and lifts the wait early only when the tracker lists nobody else. A viewer
// whose listed peers cannot connect therefore waits the whole timeout. This module watches the
// peers of the swarm the loader joins and ends the wait as soon as every listed peer has failed:
//
// - a connection attempt that closes before it connects has failed (an answer Chromium refuses
//   at setRemoteDescription, ICE or DTLS failing, the peer hanging up);
// - an offer of ours not answered within ANSWER_WAIT_MS of the tracker's announce answer has
//   failed (a peer whose tab is gone or frozen; the tracker only hands our offers to the peers
//   it lists, at most five of them, so any listed peer not heard from by then counts too);
// - an answered attempt not connected within CONNECT_WAIT_MS of its answer has failed for the
//   purpose of the wait (an unreachable peer: Chromium keeps checking its candidates, reports
//   ICE "disconnected" after ~15 s and had not reported "failed" 45 s later). The attempt itself
//   is left alone and may still connect and serve later segments.
//
// A connected peer keeps the wait on (the loader's own timeout then applies); if it closes before
// the wait is over, the rule above applies again.
//
// The library has no hook for this, so this module reaches into its objects, all plain
// properties of 1.0.20's compiled classes (the TypeScript "private" is only a type):
// Engine.loader (the HybridLoader), HybridLoader.p2pManager, P2PMediaManager.createClient (an
// instance arrow function called through `this`, so replacing it on the instance takes effect)
// and .trackerClient (bittorrent-tracker's Client: "update" carries the tracker's announce
// answer, "peer" each simple-peer connection attempt, whose "connect", "error" and "close" events
// tell how it ended). The wait is the library's own state: HybridLoader
// .httpDownloadInitialTimeoutTimestamp is -Infinity once over, and onTrackerUpdate with a
// tracker answer listing nobody else ({incomplete: 0}) is the library's own way to end it and
// schedule the HTTP downloads at once. Should any of these be missing (another version), nothing
// is installed and the wait ends on the library's timeout, as before.

const ANSWER_WAIT_MS = 1000;
const CONNECT_WAIT_MS = 1000;

/** Install the watch on `engine` (a p2p-media-loader-hlsjs Engine); false when the library's
 * internals are not the expected ones (the wait then ends on its timeout only). */
export function endWaitWhenPeersFail(engine) {
  const loader = engine && engine.loader;
  const p2p = loader && loader.p2pManager;
  if (!p2p || typeof p2p.createClient !== "function" || typeof loader.onTrackerUpdate !== "function"
      || !("httpDownloadInitialTimeoutTimestamp" in loader)) {
    return false;
  }
  const waiting = () => loader.httpDownloadInitialTimeoutTimestamp !== -Infinity;
  const createClient = p2p.createClient;
  p2p.createClient = (...args) => {
    createClient(...args);
    // A new client per swarm (the rung's); a rung switched to after the wait is not watched.
    const client = p2p.trackerClient;
    if (client && typeof client.on === "function" && waiting()) {
      const active = () => p2p.trackerClient === client && waiting();
      watchSwarm(client, active, () => loader.onTrackerUpdate({ incomplete: 0 }));
    }
  };
  return true;
}

/**
 * Follow one tracker client's peers; call `end()` once every peer its tracker listed has failed,
 * as long as `active()` (this client is the loader's and the wait is on).
 */
function watchSwarm(client, active, end) {
  let listed = 0; // other viewers in the tracker's announce answer
  let unheardFailed = false; // ANSWER_WAIT_MS passed since that answer
  const attempts = new Map(); // remote peer id -> [{ connected, closed, since }]
  let done = false;

  const failed = (attempt, now) =>
    attempt.closed || (!attempt.connected && now - attempt.since >= CONNECT_WAIT_MS);
  const check = () => {
    if (done) return;
    if (!active()) { done = true; return; }
    if (listed <= 0) return;
    const now = performance.now();
    let failedPeers = 0;
    for (const list of attempts.values()) {
      if (list.some((a) => a.connected && !a.closed)) return; // a peer is up: the loader's wait applies
      if (!list.every((a) => failed(a, now))) return; // still trying
      failedPeers += 1;
    }
    if (failedPeers >= listed || unheardFailed) {
      done = true;
      end();
    }
  };

  client.on("update", (data) => {
    if (done || !data || typeof data.incomplete !== "number") return;
    // The tracker counts this viewer too; a swarm of one is the library's own case.
    const others = data.incomplete + (typeof data.complete === "number" ? data.complete : 0) - 1;
    if (others <= 0) return;
    const first = listed === 0;
    listed = others;
    if (first) setTimeout(() => { unheardFailed = true; check(); }, ANSWER_WAIT_MS);
    check();
  });
  client.on("peer", (peer) => {
    if (done || !peer || typeof peer.once !== "function") return;
    // "peer" comes with the answer to one of our offers, or with another peer's offer.
    const attempt = { connected: false, closed: false, since: performance.now() };
    const id = String(peer.id);
    if (!attempts.has(id)) attempts.set(id, []);
    attempts.get(id).push(attempt);
    peer.once("connect", () => { attempt.connected = true; check(); });
    // A failed attempt emits "error" and, in 1.0.20, never "close": simple-peer's __destroy runs
    // its _destroy itself, so when the tracker client's error handler then calls destroy(), the
    // stream's second _destroy returns without calling back (the library's own "close" handler
    // never runs for it either). An attempt that ends without an error emits "close".
    const closed = () => { attempt.closed = true; check(); };
    peer.once("error", closed);
    peer.once("close", closed);
    setTimeout(check, CONNECT_WAIT_MS);
  });
}
