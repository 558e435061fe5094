// End-to-end test of the web console against a running hub, driven by the Rust test that
// started the hub (see ../README.md). It prints "STEP <name>" lines on stdout and, where the
// test has to act, waits for a line on stdin. Everything else it says goes to stderr.
//
// Environment:
//   ADIT_SIGN_IN_URL                  the one-time sign-in URL (https://HUB:PORT/console/#sign-in=TOKEN)
//   ADIT_DEVICE                       a device that is offline at the start
//   ADIT_SSH_USER                     SSH user on the device
//   ADIT_SSH_PASSWORD | ADIT_SSH_KEY  the password, or a private key's text (ADIT_SSH_PASSPHRASE optional)
//   ADIT_SSH_HOST_KEY                 optional: the fingerprint the page must show for the device
//   ADIT_READONLY_CONNECTION_STRING   a policy with registryRead but without serviceConnect
//   ADIT_SCREENSHOTS                  where to save the screenshots (default: ./screenshots)
//   CHROMIUM                          the browser (default: /usr/bin/chromium)

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const STEP_TIMEOUT = 30_000;
const STDIN_TIMEOUT = 180_000;

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
};
const log = (...args) => console.error('[e2e]', ...args);
const step = (name) => console.log(`STEP ${name}`);

// Lines from stdin, in order, for waitForLine().
const stdinLines = [];
let stdinWaiter = null;
let stdinClosed = false;
const stdin = createInterface({ input: process.stdin });
stdin.on('line', (line) => {
  stdinLines.push(line.trim());
  stdinWaiter?.();
});
stdin.on('close', () => {
  stdinClosed = true;
  stdinWaiter?.();
});

async function waitForLine(expected) {
  const deadline = Date.now() + STDIN_TIMEOUT;
  for (;;) {
    const index = stdinLines.indexOf(expected);
    if (index >= 0) {
      stdinLines.splice(0, index + 1);
      return;
    }
    if (stdinClosed) throw new Error(`stdin closed before the line "${expected}"`);
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no line "${expected}" on stdin within ${STDIN_TIMEOUT / 1000} s`);
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, left);
      stdinWaiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    stdinWaiter = null;
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const cssString = (s) => JSON.stringify(s); // a quoted CSS string, for attribute selectors

async function main() {
  const signInUrl = env('ADIT_SIGN_IN_URL');
  const deviceId = env('ADIT_DEVICE');
  // ADIT_E2E_TERMINAL=off leaves out step (c), for a hub without the terminal.
  const terminal = process.env.ADIT_E2E_TERMINAL !== 'off';
  const sshUser = terminal ? env('ADIT_SSH_USER') : '';
  const sshKey = process.env.ADIT_SSH_KEY || '';
  const sshPassword = sshKey || !terminal ? '' : env('ADIT_SSH_PASSWORD');
  const readOnly = env('ADIT_READONLY_CONNECTION_STRING');
  const shots = env('ADIT_SCREENSHOTS', 'screenshots');
  await mkdir(shots, { recursive: true });

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox'],
    headless: true,
  });
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);

  // A CSP violation or an uncaught error in the page fails the test.
  const problems = [];
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    log(`console error: ${message.text()}`);
    if (/Content Security Policy/i.test(message.text())) problems.push(`CSP: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  const noProblems = () => check(problems.length === 0, problems.join('\n'));

  const byTestId = (id) => page.locator(`[data-testid=${cssString(id)}]`);
  const row = byTestId('device-row').and(page.locator(`[data-device-id=${cssString(deviceId)}]`));

  try {
    // (a) The one-time link signs in and leaves the address bar.
    await page.goto(signInUrl);
    await byTestId('signed-in-as').waitFor();
    await page.waitForFunction(() => location.hash === '#/devices');
    check(!page.url().includes('sign-in='), `the sign-in token is still in the address bar: ${page.url()}`);
    await row.waitFor();
    await page.screenshot({ path: join(shots, 'devices.png'), fullPage: true });
    step('signed-in');

    // (b) The device goes online while we watch, without a reload.
    await row.and(page.locator('[data-state="Disconnected"]')).waitFor();
    await page.evaluate(() => { window.aditE2eSamePage = true; });
    step('device-offline-seen');
    await waitForLine('device-started');
    await row.and(page.locator('[data-state="Connected"]')).waitFor({ timeout: 30_000 });
    check(await page.evaluate(() => window.aditE2eSamePage === true), 'the page was reloaded');
    await page.screenshot({ path: join(shots, 'device-online.png'), fullPage: true });
    step('device-online-seen');

    // (c) A terminal: sign in over SSH, run a command, resize, close.
    if (terminal) await terminalSteps();
    async function terminalSteps() {
    await row.locator('a').first().click();
    await page.locator('[data-testid="device-details"]:not([aria-busy])').waitFor();
    await byTestId('open-terminal').click();
    await byTestId('ssh-username').fill(sshUser);
    if (sshKey) {
      await page.locator('.ssh-form summary').click();
      await byTestId('ssh-private-key').fill(sshKey);
      if (process.env.ADIT_SSH_PASSPHRASE) await byTestId('ssh-passphrase').fill(process.env.ADIT_SSH_PASSPHRASE);
    } else {
      await byTestId('ssh-password').fill(sshPassword);
    }
    await byTestId('ssh-connect').click();
    // First use: the page shows the device's host key and waits for the user's word.
    await byTestId('host-key-trust').waitFor({ timeout: 30_000 });
    const shown = (await byTestId('host-key-fingerprint').textContent()) ?? '';
    check(/^SHA256:\S+$/.test(shown), `host key fingerprint: "${shown}"`);
    if (process.env.ADIT_SSH_HOST_KEY) {
      check(shown === process.env.ADIT_SSH_HOST_KEY, `the page shows ${shown}, the device's key is ${process.env.ADIT_SSH_HOST_KEY}`);
    }
    check(await byTestId('terminal-status').getAttribute('data-state') === 'connecting', 'the terminal went on before the host key was trusted');
    await page.screenshot({ path: join(shots, 'host-key.png'), fullPage: true });
    await byTestId('host-key-trust').click();
    const status = byTestId('terminal-status');
    await page.locator('[data-testid="terminal-status"]:is([data-state="ready"], [data-state="error"], [data-state="closed"])').waitFor();
    check(await status.getAttribute('data-state') === 'ready', `the terminal did not start: ${await status.textContent()}`);
    log(`host key ${shown} trusted`);
    check(await page.evaluate(({ password, key }) => [...document.querySelectorAll('input, textarea')]
      .every((field) => !(password && field.value.includes(password)) && !(key && field.value.includes(key.trim()))),
    { password: sshPassword, key: sshKey }), 'the SSH secret is still in a form field');
    step('terminal-ready');

    await byTestId('terminal').click();
    await page.keyboard.type('echo hello');
    await page.keyboard.press('Enter');
    await waitForTerminalLine(page, (line) => line === 'hello', 'a line "hello"');
    await page.screenshot({ path: join(shots, 'terminal.png'), fullPage: true });
    step('terminal-hello');

    // The terminal's stream, on the Streams page in a second tab: who opened it, and what it
    // has carried so far each way.
    const streamsTab = await context.newPage();
    await streamsTab.goto(`${new URL(page.url()).origin}/console/#/streams`);
    const streamRow = streamsTab.locator(`[data-testid="stream-row"][data-device-id=${cssString(deviceId)}]`);
    await streamRow.waitFor();
    check(await streamRow.getAttribute('data-policy') === 'iothubowner', `the stream's policy: ${await streamRow.getAttribute('data-policy')}`);
    const carried = async () => [
      Number(await streamRow.getAttribute('data-bytes-device-to-service')),
      Number(await streamRow.getAttribute('data-bytes-service-to-device')),
    ];
    const [fromDevice, toDevice] = await carried();
    check(fromDevice > 0 && toDevice > 0, `the stream's bytes: ${fromDevice} from the device, ${toDevice} to it`);
    log(`the terminal's stream: ${fromDevice} B from the device, ${toDevice} B to it`);
    await streamsTab.screenshot({ path: join(shots, 'streams.png'), fullPage: true });
    await streamsTab.close();
    step('terminal-stream-listed');

    const before = await terminalSize(page);
    await page.setViewportSize({ width: 900, height: 620 });
    await page.waitForFunction(([cols, rows]) => {
      const box = document.querySelector('[data-testid="terminal"]');
      return box.dataset.cols !== String(cols) || box.dataset.rows !== String(rows);
    }, [before.cols, before.rows]);
    const after = await terminalSize(page);
    log(`terminal ${before.cols}x${before.rows} → ${after.cols}x${after.rows}`);
    // The hub applies the resize to the shell's pty: stty sees the new size.
    let seen = false;
    for (let attempt = 0; attempt < 3 && !seen; attempt += 1) {
      await page.keyboard.type('stty size');
      await page.keyboard.press('Enter');
      seen = await waitForTerminalLine(page, (line) => line === `${after.rows} ${after.cols}`,
        `"${after.rows} ${after.cols}" from stty size`, 10_000).then(() => true, () => false);
    }
    check(seen, `stty size never said "${after.rows} ${after.cols}": the hub did not apply the resize`);
    step('terminal-resized');

    await byTestId('terminal-close').click();
    await page.locator('[data-testid="terminal-status"][data-state="closed"]').waitFor();
    step('terminal-closed');
    }

    // (d) A read-only policy: no terminal button, and the hub refuses the WebSocket.
    await byTestId('sign-out').click();
    await byTestId('sign-in-form').waitFor();
    await byTestId('connection-string').fill(readOnly);
    await byTestId('sign-in-submit').click();
    await byTestId('signed-in-as').waitFor();
    await page.evaluate((id) => { location.hash = `#/devices/${encodeURIComponent(id)}`; }, deviceId);
    await page.locator('[data-testid="device-details"]:not([aria-busy])').waitFor();
    await byTestId('no-terminal-permission').waitFor();
    check(await byTestId('open-terminal').count() === 0, 'open-terminal is shown without serviceConnect');
    const attempt = await page.evaluate(tryTerminal, deviceId);
    log(`read-only terminal WebSocket: ${JSON.stringify(attempt)}`);
    check(!attempt.timedOut, 'the terminal WebSocket neither closed nor failed in 20 s');
    check(!attempt.messages.some((m) => m.type === 'ready'), 'the terminal WebSocket got "ready" without serviceConnect');
    check(attempt.binary === 0, 'the terminal WebSocket carried terminal bytes without serviceConnect');
    step('read-only-refused');

    noProblems();
    step('done');
    await browser.close();
    process.exit(0);
  } catch (error) {
    console.error(`FAILED: ${error.stack || error}`);
    const shown = await byTestId('error').textContent({ timeout: 1000 }).catch(() => null);
    if (shown) console.error(`the page's error: ${shown}`);
    if (problems.length) console.error(problems.join('\n'));
    await page.screenshot({ path: join(shots, 'failure.png'), fullPage: true }).catch(() => {});
    await browser.close().catch(() => {});
    process.exit(1);
  }
}

/** The terminal's rendered lines (xterm's DOM renderer: one div per row). */
function terminalLines(page) {
  return page.evaluate(() => [...document.querySelectorAll('.xterm-rows > div')]
    .map((row) => row.textContent.replace(/\u00a0/g, ' ').trim()));
}

async function waitForTerminalLine(page, matches, what, timeout = STEP_TIMEOUT) {
  const deadline = Date.now() + timeout;
  let lines = [];
  while (Date.now() < deadline) {
    lines = await terminalLines(page);
    if (lines.some(matches)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`the terminal never showed ${what}; it shows:\n${lines.filter(Boolean).join('\n')}`);
}

async function terminalSize(page) {
  return page.evaluate(() => {
    const box = document.querySelector('[data-testid="terminal"]');
    return { cols: Number(box.dataset.cols), rows: Number(box.dataset.rows) };
  });
}

/** In the page: open the terminal WebSocket as the page would, and tell how it ended. */
function tryTerminal(id) {
  return new Promise((resolve) => {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/console/api/devices/${encodeURIComponent(id)}/terminal`);
    ws.binaryType = 'arraybuffer';
    const result = { opened: false, messages: [], binary: 0, code: null, timedOut: false };
    ws.onopen = () => {
      result.opened = true;
      ws.send(JSON.stringify({ username: 'nobody', password: 'wrong', cols: 80, rows: 24 }));
    };
    ws.onmessage = (event) => {
      if (typeof event.data !== 'string') {
        result.binary += 1;
        return;
      }
      try {
        result.messages.push(JSON.parse(event.data));
      } catch {
        result.messages.push({ text: event.data });
      }
    };
    ws.onclose = (event) => {
      result.code = event.code;
      resolve(result);
    };
    setTimeout(() => {
      result.timedOut = true;
      ws.close();
      resolve(result);
    }, 20_000);
  });
}

main().catch((error) => {
  console.error(`FAILED: ${error.stack || error}`);
  process.exit(1);
});
