// The admin UI in headless Chromium: log in, create a key, see it listed, use it, see its spend,
// edit it, block it (and see the gateway refuse it), look at the models, delete it, log out.
// Usage: node tests/ui/admin.mjs <base_url> <master_key> [model]
// Screenshots of each step go to $UI_ARTIFACTS (default: target/ui-artifacts/).
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const [base, master, model = 'ui-model'] = process.argv.slice(2);
if (!base || !master) {
  console.error('usage: node admin.mjs <base_url> <master_key> [model]');
  process.exit(2);
}
const here = path.dirname(fileURLToPath(import.meta.url));
const artifacts = process.env.UI_ARTIFACTS || path.resolve(here, '../../target/ui-artifacts');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const ALIAS = 'ui-test-key';

let shots = 0;
async function shot(page, name) {
  shots += 1;
  const file = path.join(artifacts, `${String(shots).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
}

function ok(message) { console.log(`ok - ${message}`); }

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function until(what, test, ms = 30000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await test()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function chat(key) {
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hello from the UI test' }] }),
  });
  return { status: res.status, body: await res.text() };
}

await mkdir(artifacts, { recursive: true });
const browser = await chromium.launch({
  executablePath,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-dev-shm-usage'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
const page = await context.newPage();
// Generous: the suite runs this beside many other tests on a small machine.
page.setDefaultTimeout(30000);
const problems = [];
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('console', (m) => {
  // A 404 from /model/state is expected where that route is missing; CSP violations are not.
  if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
    problems.push(`console error: ${m.text()}`);
  }
});
const external = [];
page.on('request', (r) => { if (!r.url().startsWith(base) && !r.url().startsWith('data:')) external.push(r.url()); });

let failed = false;
try {
  const res = await page.goto(`${base}/ui`);
  check(res.status() === 200, `/ui answered ${res.status()}`);
  check((res.headers()['content-security-policy'] || '').includes("default-src 'none'"), 'no CSP on /ui');
  await page.locator('#login-form').waitFor();
  await shot(page, 'login');
  ok('the login page is served');

  await page.fill('#login-key', 'sk-not-the-master-key');
  await page.click('#login-form button[type=submit]');
  await page.locator('#login-error').waitFor();
  check(await page.locator('#view-keys').isHidden(), 'a wrong key got past the login form');
  await shot(page, 'login-refused');
  ok('a wrong key is refused at login');

  await page.fill('#login-key', master);
  await page.click('#login-form button[type=submit]');
  await page.locator('#view-keys').waitFor();
  const stored = await page.evaluate(() => sessionStorage.getItem('llmgate.masterKey'));
  check(stored === master, 'the master key is not in sessionStorage');
  await shot(page, 'keys-empty');
  ok('logged in with the master key');

  await page.click('#keys-new');
  await page.fill('#key-form [name=key_alias]', ALIAS);
  await page.fill('#key-form [name=rpm_limit]', '100');
  await page.selectOption('#key-form [name=duration]', 'never');
  await page.click('#key-submit');
  await page.waitForFunction(() => document.querySelector('#new-key').textContent.startsWith('sk-'));
  const key = (await page.locator('#new-key').textContent()).trim();
  await page.click('#copy-key');
  await until('the copy button to answer', async () => (await page.locator('#copy-key').textContent()) !== 'Copy');
  await shot(page, 'key-created');
  ok('a key is created and shown once with a Copy button');

  await page.click('#key-created [data-close]');
  const row = page.locator(`#keys-table tbody tr[data-alias="${ALIAS}"]`);
  await row.waitFor();
  check((await row.locator('.limits').textContent()).includes('100 rpm'), 'the rpm limit is not listed');
  check(!(await page.content()).includes(key), 'the plaintext key is still in the page');
  await shot(page, 'key-listed');
  ok('the key is listed with its limits, and its plaintext is gone from the page');

  const used = await chat(key);
  check(used.status === 200, `a chat request with the new key answered ${used.status}: ${used.body}`);
  ok('the new key works for a chat request');

  await until('the key\'s spend in the list', async () => {
    await page.click('#keys-refresh');
    await page.waitForTimeout(100);
    return (await row.locator('.spend').textContent()).trim() !== '$0';
  });
  await shot(page, 'key-spend');
  ok(`the key's spend shows in the list (${(await row.locator('.spend').textContent()).trim()})`);

  await page.click('#tabs a[data-view=spend]');
  await until('the spend charts', async () => {
    await page.click('#spend-refresh');
    await page.waitForTimeout(200);
    return (await page.locator(`#chart-keys rect[data-series="${ALIAS}"]`).count()) > 0
      && (await page.locator(`#chart-models rect[data-series="${model}"]`).count()) > 0;
  });
  await page.locator(`#chart-keys .legend li[data-series="${ALIAS}"]`).waitFor();
  check((await page.locator('#spend-total').textContent()).includes('$'), 'no total spend');
  await shot(page, 'spend-charts');
  ok('the spend charts show the key and the model');

  await page.click('#tabs a[data-view=keys]');
  await row.waitFor();
  await row.locator('[data-act=edit]').click();
  await page.fill('#key-form [name=max_budget]', '5');
  await page.fill('#key-form [name=tpm_limit]', '20000');
  await shot(page, 'key-edit');
  await page.click('#key-submit');
  await until('the edited limits', async () => (await row.locator('.limits').textContent()).includes('20,000 tpm'));
  await shot(page, 'key-edited');
  ok('the key is edited');

  await row.locator('[data-act=block]').click();
  await until('the key to show as blocked', async () => (await row.locator('.status').textContent()).includes('Blocked'));
  await shot(page, 'key-blocked');
  const refused = await chat(key);
  check(refused.status === 401, `a blocked key answered ${refused.status}: ${refused.body}`);
  check(refused.body.includes('blocked'), `the refusal does not say the key is blocked: ${refused.body}`);
  ok('the key is blocked, and the gateway refuses it');

  await row.locator('[data-act=unblock]').click();
  await until('the key to show as active', async () => (await row.locator('.status').textContent()).includes('Active'));
  check((await chat(key)).status === 200, 'an unblocked key is refused');
  ok('the key is unblocked, and works again');

  await page.click('#tabs a[data-view=models]');
  await until('the models view', async () => (await page.locator('#models-unavailable').count()) > 0
    || (await page.locator('#models-body .group').count()) > 0);
  await shot(page, 'models');
  check((await page.locator('#models-unavailable').count()) === 0, 'the models view says /model/state is unavailable');
  const live = page.locator(`#models-body .group[data-group="${model}"]`);
  await live.waitFor();
  check((await live.locator('tbody tr').count()) >= 1, 'the gateway\'s own deployment is not listed');
  check((await live.textContent()).includes('Healthy'), `the deployment is not shown healthy: ${await live.textContent()}`);
  ok('the models view shows the gateway\'s live state from /model/state');

  // The view drawn from the shape /model/state answers with (served here by the test).
  await page.route('**/model/state', (route) => route.fulfill({
    status: 200,
    contentType: 'application/json',
    body: JSON.stringify({ data: [
      { model_name: model, model_id: 'dep-aaaaaaaaaaaa', provider: 'openai', api_base: 'http://a.example/v1', healthy: true,
        cooldown_until: null, in_flight: 2, rpm_used: 12, tpm_used: 3400, rpm: 600, tpm: null, latency_ms: 123.4 },
      { model_name: model, model_id: 'dep-bbbbbbbbbbbb', provider: 'azure', api_base: 'http://b.example', healthy: false,
        cooldown_until: new Date(Date.now() + 60000).toISOString(), in_flight: 0, rpm_used: 0, tpm_used: 0, rpm: null, tpm: null, latency_ms: null },
      { model_name: 'other-model', model_id: 'dep-cccccccccccc', provider: 'anthropic', api_base: null, healthy: false,
        cooldown_until: null, in_flight: 0, rpm_used: 0, tpm_used: 0, rpm: null, tpm: null, latency_ms: null },
    ] }),
  }));
  await page.click('#models-refresh');
  const group = page.locator(`#models-body .group[data-group="${model}"]`);
  // The refresh redraws the view: wait for the served state, not the group drawn before it.
  await until('the group to list its two deployments', async () => (await group.locator('tbody tr').count()) === 2);
  const first = group.locator('tr[data-model-id="dep-aaaaaaaaaaaa"]');
  check((await first.textContent()).includes('12 / 600'), 'rpm used / limit is not shown');
  check((await first.textContent()).includes('123 ms'), 'the latency is not shown');
  check((await group.locator('tr[data-model-id="dep-bbbbbbbbbbbb"]').textContent()).includes('Cooling down'), 'the cooldown is not shown');
  check((await page.locator('#models-body .group[data-group="other-model"]').textContent()).includes('Unhealthy'), 'an unhealthy deployment is not shown');
  await shot(page, 'models-live-state');
  await page.unroute('**/model/state');
  ok('the models view shows each group and deployment with its live state');

  await page.click('#tabs a[data-view=keys]');
  await row.waitFor();
  await row.locator('[data-act=delete]').click();
  await page.locator('#confirm-dialog').waitFor();
  await shot(page, 'key-delete-confirm');
  await page.click('#confirm-yes');
  await row.waitFor({ state: 'detached' });
  check((await chat(key)).status === 401, 'a deleted key still works');
  await shot(page, 'key-deleted');
  ok('the key is deleted, and the gateway refuses it');

  await page.click('#logout');
  await page.locator('#login-form').waitFor();
  check(await page.evaluate(() => sessionStorage.getItem('llmgate.masterKey')) === null, 'the key survived logout');
  ok('logging out forgets the master key');

  check(problems.length === 0, `the page reported problems:\n${problems.join('\n')}`);
  check(external.length === 0, `the page fetched from other origins: ${external.join(', ')}`);
  ok('no script errors, no CSP violations, nothing fetched from elsewhere');
} catch (e) {
  failed = true;
  console.error(`not ok - ${e.message}`);
  if (problems.length) console.error(problems.join('\n'));
  await shot(page, 'failure').catch(() => {});
} finally {
  await browser.close();
}
console.log(failed ? 'FAILED' : `passed; screenshots in ${artifacts}`);
process.exit(failed ? 1 : 0);
