// Headless Chromium (Debian's /usr/bin/chromium) through playwright-core, for the console tests.

import { requireNode } from './harness.mjs';

// STACK.md, "Browser": exactly these arguments.
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1'];

/// Launches the browser; close it with `browser.close()`.
export function launchChromium() {
  const { chromium } = requireNode('playwright-core');
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}
