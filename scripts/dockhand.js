#!/usr/bin/env node
// The `dockhand` command. Dockhand is TypeScript run by tsx, so there is no build step
// between a clone and `npm start`; this file only registers the loader.
import { register } from 'tsx/esm/api';

register();
await import('./cli.ts');
