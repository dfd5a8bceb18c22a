/**
 * The harness: renders web/src/app/admin/r2r (the Onyx admin page) outside Onyx.
 *
 * - The page's one Onyx module (./onyx) is swapped for src/onyx-shim.tsx.
 * - /api/* is proxied to the standalone admin API (as Onyx's web server does: the /api
 *   prefix is stripped), adding the admin bearer token and the tenant header, so the
 *   browser never holds the token:
 *     R2R_ADMIN_API (default http://127.0.0.1:8090), ONYX_R2R_ADMIN_TOKEN, HARNESS_TENANT.
 * - Vitest (jsdom) runs the component tests in test/.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig, type Plugin } from "vitest/config";

const here = path.dirname(fileURLToPath(import.meta.url));
const pageDir = path.resolve(here, "../src/app/admin/r2r");
const shim = path.resolve(here, "src/onyx-shim.tsx");

function onyxShim(): Plugin {
  return {
    name: "onyx-r2r-shim",
    enforce: "pre",
    resolveId(source, importer) {
      if (source !== "./onyx" || !importer) return null;
      const from = path.dirname(importer.split("?")[0]!);
      return path.resolve(from) === pageDir ? shim : null;
    },
  };
}

const apiTarget = process.env.R2R_ADMIN_API ?? "http://127.0.0.1:8090";
const proxyHeaders: Record<string, string> = {};
if (process.env.ONYX_R2R_ADMIN_TOKEN) {
  proxyHeaders.Authorization = `Bearer ${process.env.ONYX_R2R_ADMIN_TOKEN}`;
}
if (process.env.HARNESS_TENANT) {
  proxyHeaders["X-Onyx-Tenant"] = process.env.HARNESS_TENANT;
}
const proxy = {
  "/api": {
    target: apiTarget,
    changeOrigin: true,
    rewrite: (p: string) => p.replace(/^\/api/, ""),
    headers: proxyHeaders,
  },
};

export default defineConfig({
  root: here,
  plugins: [onyxShim()],
  resolve: {
    alias: { "@page": pageDir },
    // the page lives outside this folder: resolve its packages from here
    dedupe: ["react", "react-dom", "swr", "formik", "yup"],
  },
  oxc: { jsx: { runtime: "automatic" } },
  server: { proxy, fs: { allow: [path.resolve(here, "..")] } },
  preview: { proxy },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    rollupOptions: {
      onwarn(warning, warn) {
        // swr/formik ship "use client" directives, meaningless outside Next
        if (warning.code === "MODULE_LEVEL_DIRECTIVE") return;
        warn(warning);
      },
    },
  },
  test: {
    environment: "jsdom",
    setupFiles: ["test/setup.ts"],
    include: ["test/**/*.test.tsx"],
    css: false,
  },
});
