// Two pages: `/` (and `/join`) is the student view, `/teacher` the console. The build goes to `dist/`,
// which the lectern binary embeds, each text file beside its brotli and gzip forms: thirty students
// opening the join page at once over one classroom access point move 0.5 MB each instead of 1.7 MB.
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

export default defineConfig({
  plugins: [precompress(resolve(__dirname, "dist"))],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    chunkSizeWarningLimit: 2048,
    rollupOptions: {
      input: {
        index: resolve(__dirname, "index.html"),
        teacher: resolve(__dirname, "teacher.html"),
        // The app's start page (teach or join); the browser never loads it.
        app: resolve(__dirname, "app.html"),
      },
    },
  },
  test: { include: ["src/**/*.test.ts"] },
});
