// npm run build: bundles src/ into dist/ (index.html, app.js, app.css), which the hub serves
// at /console/. Our CSS imports xterm.js's, so app.css holds both.

import { copyFile, mkdir, readdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const dist = here('./dist/');

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

await esbuild.build({
  entryPoints: { app: here('./src/main.js') }, // app.js, and app.css from its CSS import
  outdir: dist,
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  legalComments: 'eof',
  logLevel: 'warning',
});
await copyFile(here('./src/index.html'), `${dist}index.html`);

console.log(`dist/: ${(await readdir(dist)).sort().join(', ')}`);
