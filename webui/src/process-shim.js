// The little of Node's `process` that the P2P loader's stream and WebRTC modules use in a browser
// (esbuild injects it where a bundled module names `process`).
export const process = {
  browser: true,
  env: {},
  version: "",
  versions: {},
  nextTick: (callback, ...args) => queueMicrotask(() => callback(...args)),
};
