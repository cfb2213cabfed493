// clients/js/pushq.js used directly in a page (tests/browser/pages/), in
// headless Chromium, against each adapter.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { newChannel, serverAndBrowser } from './lib/browser.mjs';
import { freePort, selectedKinds, startServer } from './lib/servers.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* In the page: subscribes and records into window.got / window.states. */
async function subscribeIn(page, channel, options) {
    await page.evaluate(({ channel, options }) => {
        window.got = [];
        window.states = [];
        window.sub = PushQ.subscribe(channel, (payload, info) => {
            window.got.push({
                text: typeof payload === 'string' ? payload : null,
                bytes: typeof payload === 'string' ? null : Array.from(payload),
                isBytes: payload instanceof Uint8Array,
                info,
            });
        }, { ...options, onState: (s, info) => window.states.push({ s, ...info }) });
    }, { channel, options });
}

async function waitGot(page, n, timeout = 10000) {
    await page.waitForFunction((k) => window.got.length >= k, n, { timeout });
    return page.evaluate(() => window.got);
}

for (const kind of selectedKinds(['nginx', 'civetweb'])) {
    describe(`pushq.js on ${kind}`, () => {
        let server;
        let browser;
        let page;

        serverAndBrowser(kind, startServer, (s, b) => {
            server = s;
            browser = b;
        });

        async function freshPage() {
            if (page) {
                await page.close();
            }
            page = await browser.newPage();
            await page.goto(`${server.base}/test-pages/client.html`);
            await page.waitForFunction(() => window.classicSawPushQ !== null);
            return page;
        }

        test('is an ES module and also defines window.PushQ for plain scripts', async () => {
            const p = await freshPage();
            assert.equal(await p.evaluate(() => window.classicSawPushQ), true);
            const same = await p.evaluate(async () => {
                const m = await import('/chat/pushq.js');
                return m.subscribe === window.PushQ.subscribe && m.publish === window.PushQ.publish
                    && m.default === window.PushQ && typeof m.Subscription === 'function';
            });
            assert.equal(same, true);
        });

        for (const transport of ['websocket', 'longpoll']) {
            test(`text and binary messages arrive in order over ${transport}`, async () => {
                const p = await freshPage();
                const channel = newChannel('c');
                await subscribeIn(p, channel, { transport });
                await p.waitForFunction(() => window.sub.state === 'open');
                const answers = await p.evaluate(async (ch) => {
                    const out = [];
                    out.push(await PushQ.publish(ch, 'héllo ✓ "quoted" \\ <b>'));
                    out.push(await PushQ.publish(ch, new Uint8Array([0, 1, 2, 255, 128])));
                    out.push(await window.sub.publish('from sub.publish'));
                    return out;
                }, channel);
                assert.equal(answers[0].status, true);
                assert.equal(answers[0].id, 1);
                assert.equal(answers[0].channel, channel);
                assert.equal(answers[1].id, 2);
                assert.equal(answers[2].via, transport === 'websocket' ? 'websocket' : 'http');

                const got = await waitGot(p, 3);
                assert.equal(got.length, 3);
                assert.equal(got[0].text, 'héllo ✓ "quoted" \\ <b>');
                assert.deepEqual(got[0].info, { id: 1, channel, transport, binary: false, lost: 0, reset: false });
                assert.equal(got[1].isBytes, true);
                assert.deepEqual(got[1].bytes, [0, 1, 2, 255, 128]);
                assert.equal(got[1].info.binary, true);
                assert.equal(got[2].text, 'from sub.publish');
                assert.equal(got[2].info.id, 3);
                assert.equal(await p.evaluate(() => window.sub.lastId), 3);
            });
        }

        test('close() stops receiving and leaves the channel', async () => {
            const p = await freshPage();
            const channel = newChannel('c');
            await subscribeIn(p, channel, { transport: 'websocket' });
            await p.waitForFunction(() => window.sub.state === 'open');
            await p.evaluate((ch) => PushQ.publish(ch, 'one'), channel);
            await waitGot(p, 1);
            await p.evaluate(() => window.sub.close());
            assert.equal(await p.evaluate(() => window.sub.state), 'closed');
            await p.evaluate((ch) => PushQ.publish(ch, 'two'), channel);
            await sleep(500);
            assert.deepEqual((await p.evaluate(() => window.got)).map((m) => m.text), ['one']);
            let st;
            for (let i = 0; i < 50; i++) {
                st = await (await fetch(`${server.base}/status?channel=${channel}`)).json();
                if (st.subscribers === 0) {
                    break;
                }
                await sleep(100);
            }
            assert.equal(st.subscribers, 0, 'the server no longer counts the subscriber');
        });

        test('subscribing again resumes after the last id seen; forget + lastId 0 replays', async () => {
            const p = await freshPage();
            const channel = newChannel('c');
            await subscribeIn(p, channel, { transport: 'longpoll' });
            await p.waitForFunction(() => window.sub.state === 'open');
            await p.evaluate((ch) => PushQ.publish(ch, 'm1'), channel);
            await waitGot(p, 1);
            await p.evaluate(() => window.sub.close());
            for (const m of ['m2', 'm3']) {
                await p.evaluate(({ ch, m }) => PushQ.publish(ch, m), { ch: channel, m });
            }
            /* The same tab: the stored last id (1) is used, over the other
             * transport too. */
            await subscribeIn(p, channel, { transport: 'websocket', lastId: 0 });
            const got = await waitGot(p, 2);
            await sleep(300);
            assert.deepEqual((await p.evaluate(() => window.got)).map((m) => m.text), ['m2', 'm3']);
            assert.deepEqual(got.map((m) => m.info.id), [2, 3]);

            await p.evaluate(() => window.sub.close({ forget: true }));
            await subscribeIn(p, channel, { transport: 'websocket', lastId: 0 });
            await waitGot(p, 3);
            assert.deepEqual((await p.evaluate(() => window.got)).map((m) => m.text), ['m1', 'm2', 'm3']);
            await p.evaluate(() => window.sub.close());
        });

        test('a WebSocket the server closes reconnects and resumes without loss', async () => {
            /* The server itself closes the connection: a message over
             * max_message_size (64k) sent on the WebSocket gets 1009. */
            const p = await freshPage();
            const channel = newChannel('c');
            await subscribeIn(p, channel, { transport: 'websocket' });
            await p.waitForFunction(() => window.sub.state === 'open');
            await p.evaluate((ch) => PushQ.publish(ch, 'm1'), channel);
            await waitGot(p, 1);
            await p.evaluate(() => window.sub.publish('x'.repeat(70 * 1024)));
            await p.waitForFunction(() => window.states.some((s) => s.s === 'reconnecting'), null,
                                    { timeout: 10000 });
            for (const m of ['m2', 'm3', 'm4']) {
                await p.evaluate(({ ch, m }) => PushQ.publish(ch, m), { ch: channel, m });
            }
            const got = await waitGot(p, 4);
            await sleep(300);
            assert.deepEqual((await p.evaluate(() => window.got)).map((m) => m.text),
                             ['m1', 'm2', 'm3', 'm4']);
            assert.deepEqual(got.map((m) => m.info.id), [1, 2, 3, 4]);
            const drop = (await p.evaluate(() => window.states)).find((s) => s.s === 'reconnecting');
            assert.match(drop.error, /closed by the server with code 1009/);
            await p.waitForFunction(() => window.sub.state === 'open'
                                          && window.sub.transport === 'websocket');
            await p.evaluate(() => window.sub.close());
        });

        for (const transport of ['websocket', 'longpoll']) {
            test(`messages gone from the buffer are reported as lost over ${transport}`, async () => {
                const small = await startServer(kind, { settings: { buffer: 3 } });
                try {
                    const p = await browser.newPage();
                    await p.goto(`${small.base}/test-pages/client.html`);
                    await p.waitForFunction(() => window.classicSawPushQ !== null);
                    const channel = newChannel('c');
                    await subscribeIn(p, channel, { transport });
                    await p.evaluate(() => { window.lostCalls = []; });
                    await p.waitForFunction(() => window.sub.state === 'open');
                    await p.evaluate((ch) => PushQ.publish(ch, 'm1'), channel);
                    await waitGot(p, 1);
                    await p.evaluate(() => window.sub.close());
                    /* Away while m2..m7 are published: the channel keeps m5..m7. */
                    for (let i = 2; i <= 7; i++) {
                        await p.evaluate(({ ch, m }) => PushQ.publish(ch, m), { ch: channel, m: `m${i}` });
                    }
                    await p.evaluate(({ channel, transport }) => {
                        window.got = [];
                        window.sub = PushQ.subscribe(channel, (payload, info) => window.got.push({ text: payload, info }), {
                            transport, onLost: (n) => window.lostCalls.push(n),
                        });
                    }, { channel, transport });
                    const got = await waitGot(p, 3);
                    assert.deepEqual(got.map((m) => m.text), ['m5', 'm6', 'm7']);
                    assert.equal(got[0].info.lost, 3, 'the first message says 3 were lost');
                    assert.deepEqual(await p.evaluate(() => window.lostCalls), [3]);
                    await p.evaluate(() => window.sub.close());
                    await p.close();
                } finally {
                    await small.cleanup();
                }
            });
        }

        test('retries a server that is not there with exponential backoff and jitter', async () => {
            const p = await freshPage();
            const dead = await freePort();
            await subscribeIn(p, 'x', {
                url: `http://127.0.0.1:${dead}/sub`, transport: 'longpoll',
                backoff: { initial: 100, factor: 2, max: 800, jitter: 0.5 },
            });
            await p.waitForFunction(() => window.states.filter((s) => s.s === 'reconnecting').length >= 6,
                                    null, { timeout: 15000 });
            const retries = (await p.evaluate(() => window.states)).filter((s) => s.s === 'reconnecting');
            await p.evaluate(() => window.sub.close());
            const delays = [];
            retries.slice(0, 6).forEach((r, i) => {
                const full = Math.min(800, 100 * 2 ** i);
                assert.equal(r.attempt, i + 1);
                assert.ok(r.retryIn >= full / 2 && r.retryIn <= full,
                          `attempt ${i + 1}: ${r.retryIn} ms not in [${full / 2}, ${full}]`);
                assert.match(r.error, new RegExp(`cannot reach the server at 127\\.0\\.0\\.1:${dead}`));
                delays.push(r.retryIn);
            });
            assert.ok(delays.some((d, i) => d !== Math.min(800, 100 * 2 ** i)), `jitter: ${delays}`);
        });

        test('an argument the server refuses stops with its error instead of retrying', async () => {
            const p = await freshPage();
            await subscribeIn(p, 'not a valid channel!', { transport: 'longpoll' });
            await p.waitForFunction(() => window.sub.state === 'error', null, { timeout: 10000 });
            const last = (await p.evaluate(() => window.states)).at(-1);
            assert.match(last.error, /answered HTTP 400: .*channel/);
        });
    });
}
