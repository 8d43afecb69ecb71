// Two builds of the same pages. `vite build` is the browser's: `/` (and `/join`) is the student view,
// `/teacher` the console, in `dist/`, which the lectern binary embeds and serves. `vite build --mode
// app` is the Tauri app's, in `dist-app/`: the same two pages and the app's start page. Which platform
// the pages get is chosen here, not when they run: `@platform` is `platform/browser.ts` or
// `platform/app.ts`, so the browser's bundle carries none of the app's code (scripts/check-bundle.mjs).
// Each text file lies beside its brotli and gzip forms: thirty students opening the join page at
// once over one classroom access point move 0.5 MB each instead of 1.7 MB.
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import type { Plugin } from "vite";
import { defineConfig } from "vitest/config";

/** Writes `file.br` and `file.gz` beside every text file of the build that compression shrinks. */
function precompress(dir: string): Plugin {
  const walk = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
  return {
    name: "lectern-precompress",
    apply: "build",
    closeBundle() {
      for (const file of walk(dir).filter((f) => /\.(m?js|css|html|svg|json)$/.test(f))) {
        const bytes = readFileSync(file);
        if (bytes.length < 1024) continue;
        const br = brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length } });
        if (br.length < bytes.length * 0.9) writeFileSync(`${file}.br`, br);
        const gz = gzipSync(bytes, { level: 9 });
        if (gz.length < bytes.length * 0.9) writeFileSync(`${file}.gz`, gz);
      }
    },
  };
}

export default defineConfig(({ mode }) => {
  const app = mode === "app";
  const outDir = resolve(__dirname, app ? "dist-app" : "dist");
  // The app's start page (teach or join) is only in the app: a browser never loads it.
  const pages = app ? ["index", "teacher", "app"] : ["index", "teacher"];
  return {
    plugins: [precompress(outDir)],
    resolve: {
      // tsconfig.json's `paths` says the same to tsc, and tsconfig.app.json the app's.
      alias: [{ find: /^@platform$/, replacement: resolve(__dirname, "src/platform", app ? "app.ts" : "browser.ts") }],
    },
    build: {
      outDir,
      emptyOutDir: true,
      target: "es2022",
      chunkSizeWarningLimit: 2048,
      rollupOptions: { input: Object.fromEntries(pages.map((p) => [p, resolve(__dirname, `${p}.html`)])) },
    },
    test: { include: ["src/**/*.test.ts"] },
  };
});
