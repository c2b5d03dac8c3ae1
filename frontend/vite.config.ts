/// <reference types="vitest/config" />
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig, type ProxyOptions } from "vite";

// The dev server proxies the API to a running studio (`studio up`, default port 8000; STUDIO_URL to change).
// The studio refuses browser writes from another origin, so the proxy drops the dev page's `Origin`.
const api = process.env.STUDIO_URL ?? "http://127.0.0.1:8000";
const proxied = ["/v1", "/healthz", "/docs", "/openapi.json"];
const proxy: ProxyOptions = {
  target: api,
  changeOrigin: true,
  configure: (server) => server.on("proxyReq", (request) => request.removeHeader("origin")),
};

export default defineConfig({
  plugins: [react()],
  resolve: { alias: { "@": fileURLToPath(new URL("./src", import.meta.url)) } },
  server: { port: 5173, proxy: Object.fromEntries(proxied.map((p) => [p, proxy])) },
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 800 },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["./src/test/setup.ts"],
    css: false,
  },
});
