import { defineConfig } from 'vite';

// Built into dashboard/dist and served by the balancer's admin listener at /dashboard/.
export default defineConfig({
  root: import.meta.dirname,
  base: '/dashboard/',
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 200 },
  logLevel: 'warn',
});
