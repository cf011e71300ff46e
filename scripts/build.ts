/**
 * `npm run build`: the executable dist/src/main.js, one ESM bundle of src/, drivers/ and the
 * pure-JS dependencies (esbuild), beside a copy of the status page.
 *
 * Why a bundle and not tsc's one file per module (issue 9, measured with the whole-gateway
 * scenario; figures in bench/README.md, "The bundle"):
 * - every module node loads keeps its whole source text in the V8 heap for as long as the
 *   process runs (V8 compiles functions lazily, from the source); zod alone loads 63 locale
 *   files the gateway never uses, and a source with one non-Latin-1 character in a comment
 *   is held at two bytes a character. The bundle has no comments, is ASCII (esbuild escapes
 *   the rest) and leaves the locales out;
 * - ~350 module records, file reads and resolutions fewer at start-up: the gateway starts
 *   about a third faster, which is the time a kill -9 leaves the sensors without a broker.
 *
 * Kept as they were: identifiers and function names (stack traces and logged error types
 * read as in the sources; a linked source map points back to them), the native modules
 * (better-sqlite3, serialport) and pino-pretty, which node loads from node_modules, and
 * lazy loading: `import('ws')` stays a separate file, loaded only with a WebSocket listener.
 */
import { build, type Plugin } from 'esbuild';
import { chmodSync, copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = `${root}dist/src`;

/**
 * zod's entry points re-export all its locales (`z.locales`) and install English itself.
 * outpost writes its own config messages and never picks a locale, so the namespace is
 * reduced to English. Matched by file name only: if zod moves it, the bundle just keeps
 * all the locales.
 */
const englishOnlyZod: Plugin = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /\/locales\/index\.js$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]/.test(args.importer) ? { path: resolve(args.resolveDir, args.path), namespace: 'zod-english-only' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-english-only' }, (args) => ({
      contents: "export { default as en } from './en.js';",
      resolveDir: dirname(args.path),
      loader: 'js',
    }));
  },
};

rmSync(`${root}dist`, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
const result = await build({
  entryPoints: [`${root}src/main.ts`],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'bundle',
  external: ['better-sqlite3', 'serialport', '@serialport/*', 'pino-pretty'],
  // CommonJS dependencies call require() for node's built-ins; an ESM bundle has none of its own.
  banner: { js: "import { createRequire as __outpostRequire } from 'node:module'; const require = __outpostRequire(import.meta.url);" },
  // Beside main.js, so import.meta.url names the same folder (the status page, createRequire) in every file.
  chunkNames: '[name]-[hash]',
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: true,
  legalComments: 'linked',
  charset: 'ascii',
  sourcemap: 'linked',
  plugins: [englishOnlyZod],
  logLevel: 'warning',
  metafile: true,
});
copyFileSync(`${root}src/observability/status-page.html`, `${outdir}/status-page.html`);
chmodSync(`${outdir}/main.js`, 0o755);
const bytes = Object.entries(result.metafile.outputs)
  .filter(([file]) => file.endsWith('.js'))
  .reduce((sum, [, o]) => sum + o.bytes, 0);
console.log(`dist/src/main.js: ${Object.keys(result.metafile.inputs).length} modules, ${(bytes / 1024).toFixed(0)} KiB of JavaScript`);
