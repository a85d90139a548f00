// Bundles the browser entry points in src/ into static/dist/ (git-ignored).
import { build } from "esbuild";

await build({
  entryPoints: { player: "src/player.js", app: "src/app.js", upload: "src/upload.js" },
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "esm",
  target: ["chrome100", "firefox100", "safari15"],
  outdir: "static/dist",
  logLevel: "info",
});
