import { fileURLToPath } from 'node:url';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

// Built into .build/console/ and served by api/plugins/console.ts at /console/.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/console/',
  plugins: [preact()],
  // Nothing leaves the machine at build or run time: no CDN, no remote fonts.
  build: {
    outDir: fileURLToPath(new URL('../.build/console', import.meta.url)),
    emptyOutDir: true,
    sourcemap: true,
    // Inlined assets would be data: URLs; files keep the CSP simple and cacheable.
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
  logLevel: 'warn',
});
