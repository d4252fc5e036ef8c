import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { freePort } from '../apps/lab/src/topology/free-port.js';
import { dropNatsNamespace, testNamespace } from './support/nats-namespace.js';
import { RegionProcess } from '../apps/lab/src/topology/server-process.js';

const servers = process.env.GEO_NATS_URL ?? 'nats://127.0.0.1:4222';
const namespace = testNamespace('browser');
const REGIONS = ['asia', 'eu', 'us'];
/** Debian's Chromium, driven by playwright-core (no browser download). */
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
const SCREENSHOT = '/tmp/browser-chat.png';

/** One message row of a pane, as the page shows it. */
interface Row {
  seq: number | null;
  sender: string;
  origin: string;
  text: string;
  latency: string;
  status: 'pending' | 'acked' | 'failed' | 'shown';
}

function rows(pane: Locator): Promise<Row[]> {
  return pane.locator('.msg').evaluateAll((elements) =>
    elements.map((element) => {
      const text = (selector: string) => element.querySelector(selector)?.textContent ?? '';
      const seq = element.getAttribute('data-seq');
      const status = (['pending', 'acked', 'failed'] as const).find((name) => element.classList.contains(name)) ?? 'shown';
      return {
        seq: seq === null ? null : Number(seq),
        sender: text('.sender'),
        origin: text('.origin'),
        text: text('.text'),
        latency: text('.latency'),
        status,
      };
    }),
  );
}

/** Waits until the message's own event (not the pending or acked placeholder) is shown. */
async function shownMessage(pane: Locator, text: string): Promise<Row> {
  await pane.locator('.msg:not(.pending):not(.acked):not(.failed)', { hasText: text }).waitFor({ timeout: 30_000 });
  return (await rows(pane)).find((row) => row.text === text)!;
}

async function send(pane: Locator, text: string): Promise<void> {
  await pane.getByTestId('composer').fill(text);
  await pane.getByTestId('send').click();
}

const textOf = (pane: Locator, testId: string) => pane.getByTestId(testId).innerText();

/**
 * The chat page in headless Chromium against three region processes on NATS: a message
 * sent from an asia pane reaches an eu pane on another page; the asia process restarts
 * and the asia pane's SDK fails over, its messages still arrive once each, in seq order.
 */
describe('chat page in a browser (three region processes, NATS)', () => {
  const regions: RegionProcess[] = [];
  const pageErrors: string[] = [];
  let browser: Browser | undefined;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: run \`bash scripts/services.sh\`, which installs Debian's chromium`);
    const ports = await Promise.all(REGIONS.map(() => freePort()));
    const directory = REGIONS.map((name, i) => `${name}=http://127.0.0.1:${ports[i]}`).join(',');
    for (const [i, name] of REGIONS.entries()) {
      regions.push(
        new RegionProcess(name, ports[i], {
          GEO_TRANSPORT: 'nats',
          GEO_NATS_URL: servers,
          GEO_NAMESPACE: namespace,
          GEO_REGIONS: directory,
        }),
      );
    }
    await Promise.all(regions.map((region) => region.start()));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await Promise.all(regions.map((region) => region.stop()));
    await dropNatsNamespace(servers, namespace);
  }, 30_000);

  /** A new page served by the region `served`, with that region's pane open and connected. */
  async function openPane(
    served: RegionProcess,
    name: string,
    room: string,
    codec: 'json' | 'msgpack' = 'json',
  ): Promise<{ page: Page; pane: Locator; frames: { binary: boolean }[] }> {
    const page = await browser!.newPage({ viewport: { width: 1000, height: 720 } });
    page.on('pageerror', (error) => pageErrors.push(`${name}: ${error.message}`));
    // What the page's WebSocket receives: text or binary frames.
    const frames: { binary: boolean }[] = [];
    page.on('websocket', (socket) => socket.on('framereceived', ({ payload }) => frames.push({ binary: typeof payload !== 'string' })));
    await page.goto(`${served.url}/`);
    await page.getByTestId('name').fill(name);
    await page.getByTestId('room').fill(room);
    await page.getByTestId('codec-choice').selectOption(codec);
    await page.getByTestId(`open-${served.region}`).click();
    const pane = page.locator(`.pane[data-region="${served.region}"]`);
    await pane
      .getByTestId('state')
      .filter({ hasText: /^open$/ })
      .waitFor({ timeout: 20_000 });
    return { page, pane, frames };
  }

  it('a message crosses regions; the asia process restarts and its pane fails over without loss or duplicates', async () => {
    const [asia, eu, us] = regions;
    const room = `browser-${randomUUID().slice(0, 6)}`;
    const texts = ['first, from asia', 'second, as asia drains', 'third, while asia is down'];
    const a = await openPane(asia, 'alice', room);
    const b = await openPane(eu, 'bob', room);
    expect(await textOf(a.pane, 'via')).toBe('asia');
    expect(await textOf(b.pane, 'via')).toBe('eu');
    expect(await textOf(a.pane, 'sender')).toBe('alice');

    await send(a.pane, texts[0]);
    expect(await shownMessage(b.pane, texts[0])).toMatchObject({ seq: 1, sender: 'alice', origin: 'asia' });
    expect(await shownMessage(a.pane, texts[0])).toMatchObject({ seq: 1, origin: 'asia' });
    // The first message placed the room's log in asia: every pane says so.
    for (const pane of [a.pane, b.pane]) {
      await pane
        .getByTestId('home')
        .filter({ hasText: /^asia$/ })
        .waitFor({ timeout: 10_000 });
    }

    // Typing is ephemeral (at most once, no replay), so it is checked only now that bob's
    // pane has surely joined the room: it got message 1.
    await a.pane.getByTestId('composer').fill('typing…');
    await b.pane.getByTestId('typing').filter({ hasText: 'alice is typing' }).waitFor({ timeout: 10_000 });

    // SIGTERM: asia drains (geo.reconnect, then close 1012) while alice sends.
    const stoppedAt = Date.now();
    const stopping = asia.stop('SIGTERM');
    await send(a.pane, texts[1]);
    await a.pane
      .getByTestId('via')
      .filter({ hasText: /^(eu|us)$/ })
      .waitFor({ timeout: 15_000 });
    const movedAfterMs = Date.now() - stoppedAt;
    const viaWhileDown = await textOf(a.pane, 'via');
    await stopping;
    await send(a.pane, texts[2]);
    await asia.start();
    const restartedAfterMs = Date.now() - stoppedAt;

    for (const text of texts.slice(1)) await shownMessage(b.pane, text);
    for (const text of texts.slice(1)) await shownMessage(a.pane, text);
    await a.pane
      .getByTestId('state')
      .filter({ hasText: /^open$/ })
      .waitFor({ timeout: 10_000 });

    // The SDK moves to the next region of regionOrder (eu) and, with a fixed order, stays
    // there after asia is back: it does not drift home.
    expect(viaWhileDown).toBe('eu');
    expect(await textOf(a.pane, 'via')).toBe('eu');
    expect(await textOf(a.pane, 'away')).toContain('failed over from asia');
    expect(await textOf(a.pane, 'rtt')).toMatch(/^rtt \d+ ms$/);

    const seen = await rows(a.pane);
    const shown = await rows(b.pane);
    // Every message once, as its own event (no placeholder left), seqs strictly increasing.
    expect(seen.map((row) => row.text)).toEqual(texts);
    expect(seen.map((row) => row.status)).toEqual(['shown', 'shown', 'shown']);
    expect(seen.map((row) => row.seq)).toEqual([1, 2, 3]);
    // The other page shows the same log: same seqs, senders, origins.
    expect(shown.map(({ seq, text, sender, origin }) => ({ seq, text, sender, origin }))).toEqual(
      seen.map(({ seq, text, sender, origin }) => ({ seq, text, sender, origin })),
    );
    // Sent while asia was down: accepted by the region the pane moved to.
    expect(seen[2].origin).toBe('eu');

    // A pane opened now (us) gets the room's retained history, labelled as such.
    const late = await openPane(us, 'carol', room);
    for (const text of texts) await shownMessage(late.pane, text);
    expect((await rows(late.pane)).map(({ seq, origin, latency }) => ({ seq, origin, latency }))).toEqual(
      seen.map(({ seq, origin }) => ({ seq, origin, latency: 'history' })),
    );
    expect(pageErrors).toEqual([]);

    await a.page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(
      `browser chat: asia pane moved to ${viaWhileDown} ${movedAfterMs} ms after SIGTERM; asia back after ${restartedAfterMs} ms; ` +
        `rows ${JSON.stringify(seen.map(({ seq, origin, latency }) => ({ seq, origin, latency })))}; screenshot ${SCREENSHOT}`,
    );
  }, 120_000);

  it('a MessagePack pane and a JSON pane share a room: each receives the other, the MessagePack one in binary frames', async () => {
    const [, eu, us] = regions;
    const room = `codec-${randomUUID().slice(0, 6)}`;
    const packed = await openPane(eu, 'mia', room, 'msgpack');
    const plain = await openPane(us, 'jon', room, 'json');
    expect(await textOf(packed.pane, 'codec')).toBe('MessagePack');
    expect(await textOf(plain.pane, 'codec')).toBe('JSON');
    await send(packed.pane, 'from a MessagePack pane');
    await send(plain.pane, 'from a JSON pane');
    for (const view of [packed, plain]) {
      await shownMessage(view.pane, 'from a MessagePack pane');
      await shownMessage(view.pane, 'from a JSON pane');
    }
    const summary = async (pane: Locator) => (await rows(pane)).map(({ seq, text, sender, origin }) => ({ seq, text, sender, origin }));
    expect(await summary(packed.pane)).toEqual(await summary(plain.pane));
    const shown = await summary(packed.pane);
    expect(shown.map(({ text, sender, origin }) => ({ text, sender, origin }))).toEqual([
      { text: 'from a MessagePack pane', sender: 'mia', origin: 'eu' },
      { text: 'from a JSON pane', sender: 'jon', origin: 'us' },
    ]);
    expect(shown[1].seq).toBeGreaterThan(shown[0].seq!);
    expect(packed.frames.length).toBeGreaterThan(3);
    expect(packed.frames.every((frame) => frame.binary)).toBe(true);
    expect(plain.frames.every((frame) => !frame.binary)).toBe(true);
    expect(pageErrors).toEqual([]);
  }, 60_000);
});
