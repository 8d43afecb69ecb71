// Two pages: `/` (and `/join`) is the student view, `/teacher` the console. The build goes to `dist/`,
// which the lectern binary embeds.
import { resolve } from "node:path";
import { defineConfig } from "vitest/config";

export default defineConfig({
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
