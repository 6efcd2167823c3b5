import { defineConfig } from 'tsup';

import { appBuild } from '../../tsup.base.js';

export default defineConfig(appBuild());
