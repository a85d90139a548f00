// Bundles the browser entry points in src/ into static/dist/ (git-ignored).
import { build } from "esbuild";

await build({
  entryPoints: { player: "src/player.js", app: "src/app.js", upload: "src/upload.js" },
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "esm",
  // Code loaded on demand (the P2P loader) goes to content-hashed chunks.
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  // Node-style modules inside the P2P loader expect `global` and `process`.
  define: { global: "globalThis" },
  inject: ["src/process-shim.js"],
  target: ["chrome100", "firefox100", "safari15"],
  outdir: "static/dist",
  logLevel: "info",
});
