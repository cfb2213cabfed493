// The chat demo (examples/chat/) and the seed's jQuery page
// (examples/seed-chat.html) in headless Chromium, against each adapter.
//
//   node --test tests/browser/     (PUSHQ_BROWSER_SERVERS=nginx,nginx4,civetweb to pick)

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
    newChannel, openChat, screenshot, send, serverAndBrowser, shown, waitLive,
    waitShown,
} from './lib/browser.mjs';
import { selectedKinds, startProxy, startServer } from './lib/servers.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function publishHttp(base, channel, text) {
    const res = await fetch(`${base}/pub?channel=${channel}`, {
        method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: text,
    });
    assert.equal(res.status, 200, `publish answered ${res.status}`);
    return res.json();
}

/* A chat message as the demo page publishes it. */
const chatJson = (from, text) => JSON.stringify({ from, text });

async function channelStatus(base, channel) {
    const res = await fetch(`${base}/status?channel=${channel}`);
    if (res.status === 404) {
        return { subscribers: 0 };      /* a channel nobody used yet */
    }
    assert.equal(res.status, 200);
    return res.json();
}

/* Waits until `count` connections wait or are open on the channel. */
async function waitSubscribers(base, channel, count) {
    const deadline = Date.now() + 10000;
    let st;
    while (Date.now() < deadline) {
        st = await channelStatus(base, channel);
        if (st.subscribers >= count) {
            return;
        }
        await sleep(100);
    }
    assert.fail(`channel ${channel}: ${st && st.subscribers} subscribers, expected ${count}`);
}

/* Texts shown, in order; each message shown exactly once. */
function texts(list) {
    return list.map((m) => m.text);
}

for (const kind of selectedKinds()) {
    describe(`chat demo on ${kind}`, () => {
        let server;
        let browser;

        serverAndBrowser(kind, startServer, (s, b) => {
            server = s;
            browser = b;
        });

        async function closeAll(...chats) {
            for (const c of chats) {
                await c.page.close();
            }
        }

        test('two users chat both ways over WebSocket, and a late joiner sees the history', async () => {
            const channel = newChannel();
            const a = await openChat(browser, server.base, 'Ada', { channel, transport: 'websocket' });
            const b = await openChat(browser, server.base, 'Grace', { channel, transport: 'websocket' });
            await send(a, 'Hello Grace, this goes over a WebSocket.');
            await waitShown(b.page, ['Hello Grace, this goes over a WebSocket.']);
            await send(b, 'Hi Ada! Same here, both ways.', { button: true });
            await send(a, 'Nice: no page reload, no polling.');
            const want = ['Hello Grace, this goes over a WebSocket.', 'Hi Ada! Same here, both ways.',
                          'Nice: no page reload, no polling.'];
            for (const c of [a, b]) {
                const list = await waitShown(c.page, want);
                assert.deepEqual(texts(list), want, `${c.name} shows each message once, in order`);
                assert.deepEqual(list.map((m) => m.from), ['Ada', 'Grace', 'Ada']);
                assert.deepEqual(list.map((m) => m.mine), c === a ? [true, false, true] : [false, true, false]);
            }
            /* The messages travelled in WebSocket frames, both ways. */
            assert.ok(a.traffic.wsSent.some((f) => f.includes('goes over a WebSocket')));
            assert.ok(b.traffic.wsReceived.some((f) => f.includes('goes over a WebSocket')));
            assert.ok(b.traffic.wsSent.some((f) => f.includes('Same here')));
            assert.ok(a.traffic.wsReceived.some((f) => f.includes('Same here')));
            assert.equal(a.traffic.pollBodies.length + b.traffic.pollBodies.length, 0, 'no long-poll used');

            const c = await openChat(browser, server.base, 'Linus', { channel, transport: 'websocket' });
            assert.deepEqual(texts(await waitShown(c.page, want)), want, 'the history, once, in order');
            await send(c, 'Hello both, I just joined.');
            await waitShown(a.page, ['Hello both, I just joined.']);
            await screenshot(a.page, `${kind}-chat-websocket`);
            await closeAll(a, b, c);
        });

        test('two users chat both ways over long-poll', async () => {
            const channel = newChannel();
            const a = await openChat(browser, server.base, 'Ada', { channel, transport: 'longpoll' });
            const b = await openChat(browser, server.base, 'Grace', { channel, transport: 'longpoll' });
            await send(a, 'Polling for news, Grace?');
            await waitShown(b.page, ['Polling for news, Grace?']);
            await send(b, 'Yes, long-poll works here.', { button: true });
            const want = ['Polling for news, Grace?', 'Yes, long-poll works here.'];
            for (const c of [a, b]) {
                assert.deepEqual(texts(await waitShown(c.page, want)), want);
                assert.equal(c.traffic.wsOpened, 0, 'no WebSocket used');
            }
            assert.ok(b.traffic.pollBodies.some((body) => body.includes('Polling for news')));
            assert.ok(a.traffic.pollBodies.some((body) => body.includes('long-poll works')));

            const c = await openChat(browser, server.base, 'Linus', { channel, transport: 'longpoll' });
            assert.deepEqual(texts(await waitShown(c.page, want)), want, 'the history over long-poll');
            await screenshot(b.page, `${kind}-chat-longpoll`);
            await closeAll(a, b, c);
        });

        test('one user on WebSocket chats with one on long-poll', async () => {
            const channel = newChannel();
            const a = await openChat(browser, server.base, 'Ada', { channel, transport: 'websocket' });
            const b = await openChat(browser, server.base, 'Grace', { channel, transport: 'longpoll' });
            await send(a, 'From the WebSocket side.');
            await send(b, 'From the long-poll side.');
            await send(a, 'Both sides see both.');
            const want = ['From the WebSocket side.', 'From the long-poll side.', 'Both sides see both.'];
            for (const c of [a, b]) {
                assert.deepEqual(texts(await waitShown(c.page, want)), want);
            }
            assert.ok(b.traffic.pollBodies.some((body) => body.includes('WebSocket side')));
            assert.ok(a.traffic.wsReceived.some((f) => f.includes('long-poll side')));
            await closeAll(a, b);
        });

        test('the page switches transport without losing a message', async () => {
            const channel = newChannel();
            const a = await openChat(browser, server.base, 'Ada', { channel, transport: 'websocket' });
            const b = await openChat(browser, server.base, 'Grace', { channel, transport: 'websocket' });
            await send(a, 'one');
            await waitShown(b.page, ['one']);
            await b.page.check('input[name="transport"][value="longpoll"]');
            await send(a, 'two');
            await waitLive(b.page, 'longpoll');
            await send(a, 'three');
            await b.page.check('input[name="transport"][value="websocket"]');
            await send(a, 'four');
            await waitLive(b.page, 'websocket');
            const want = ['one', 'two', 'three', 'four'];
            assert.deepEqual(texts(await waitShown(b.page, want)), want);
            await closeAll(a, b);
        });

        test('the page falls back to long-poll when WebSocket cannot be opened', async () => {
            /* A proxy that answers every WebSocket handshake with 400, as
             * one that does not pass Upgrade would. */
            const proxy = await startProxy(server.port, { refuseWebSocket: true });
            try {
                const channel = newChannel();
                const a = await openChat(browser, server.base, 'Ada', { channel });
                const b = await openChat(browser, proxy.base, 'Grace', { channel, expect: 'longpoll' });
                assert.match(await b.page.getAttribute('#conn', 'title'), /WebSocket could not be opened/);
                await send(b, 'I am behind an old proxy.');
                await send(a, 'And you still get this.');
                const want = ['I am behind an old proxy.', 'And you still get this.'];
                for (const c of [a, b]) {
                    assert.deepEqual(texts(await waitShown(c.page, want)), want);
                }
                await closeAll(a, b);
            } finally {
                await proxy.close();
            }
        });

        test("the seed's jQuery page works unchanged, and talks with the demo", async () => {
            const already = (await channelStatus(server.base, 'default')).subscribers || 0;
            const pages = [];
            for (const name of ['seedA', 'seedB']) {
                const page = await browser.newPage();
                await page.goto(`${server.base}/seed-chat.html?name=${name}`);
                assert.equal(await page.textContent('#me'), name);
                pages.push(page);
            }
            const [a, b] = pages;
            /* Both pages have their GET /get_msg/ waiting: their names exist. */
            await waitSubscribers(server.base, 'default', already + 2);
            const demo = await openChat(browser, server.base, 'Modern', { channel: 'default' });

            await a.fill('#content', 'hello from the seed page');
            await a.press('#content', 'Enter');
            await b.fill('#content', 'and hello back & welcome');
            await b.click('#send');
            const want = ['hello from the seed page', 'and hello back & welcome'];
            for (const page of pages) {
                await page.waitForFunction((n) => document.querySelectorAll('#msgs p').length >= n,
                                           want.length, { timeout: 15000 });
                const got = await page.$$eval('#msgs p', (ps) => ps.map((p) => p.textContent));
                assert.deepEqual(got.slice(-want.length), want);
                assert.equal(await page.inputValue('#content'), '', 'the form was cleared after sending');
                assert.equal(await page.textContent('#status'), '');
            }
            /* The demo page on the same channel gets them as plain text. */
            const list = await waitShown(demo.page, want);
            assert.deepEqual(texts(list).slice(-2), want);
            await screenshot(a, `${kind}-seed-chat`);
            for (const page of pages) {
                await page.close();
            }
            await closeAll(demo);
        });

        test('a page reload resumes without losing a message', async () => {
            const channel = newChannel();
            const a = await openChat(browser, server.base, 'Ada', { channel });
            const b = await openChat(browser, server.base, 'Grace', { channel });
            const url = b.page.url();
            await send(a, 'before the reload');
            await waitShown(b.page, ['before the reload']);

            /* Grace leaves the page; Ada writes meanwhile; Grace comes back
             * in the same tab. */
            await b.page.goto('about:blank');
            await send(a, 'while you were away 1');
            await send(a, 'while you were away 2');
            await b.page.goto(url);
            await waitLive(b.page, 'websocket');
            assert.equal(await b.page.textContent('#me'), 'Grace', 'the name was kept');

            /* A plain reload, with messages published as it happens. */
            const burst = [];
            const reload = b.page.reload();
            for (let i = 1; i <= 5; i++) {
                burst.push(`during the reload ${i}`);
                await publishHttp(server.base, channel, chatJson('Ada', burst.at(-1)));
                await sleep(20);
            }
            await reload;
            await waitLive(b.page, 'websocket');
            await send(a, 'after the reload');
            const want = ['before the reload', 'while you were away 1', 'while you were away 2',
                          ...burst, 'after the reload'];
            const list = await waitShown(b.page, want);
            assert.deepEqual(texts(list), want, 'every message once, in order');
            const ids = list.map((m) => m.id);
            assert.deepEqual(ids, ids.map((_, i) => ids[0] + i), 'consecutive ids');
            await closeAll(a, b);
        });

        test('a dropped WebSocket connection resumes without losing a message', async () => {
            /* Grace reaches the server through a proxy that cuts every
             * connection (both directions reset) and turns reconnections
             * away for a second, while Ada keeps publishing. */
            const proxy = await startProxy(server.port);
            try {
                const channel = newChannel();
                const a = await openChat(browser, server.base, 'Ada', { channel, transport: 'websocket' });
                const b = await openChat(browser, proxy.base, 'Grace', { channel, transport: 'websocket' });
                const want = [];
                for (let i = 1; i <= 30; i++) {
                    want.push(`message ${i}`);
                    await publishHttp(server.base, channel, chatJson('Ada', want.at(-1)));
                    if (i === 10) {
                        proxy.refuse(1000);
                        proxy.cutAll();
                    }
                    await sleep(i > 10 && i <= 20 ? 60 : 5);
                }
                const list = await waitShown(b.page, want, 20000);
                assert.deepEqual(texts(list), want, 'every message once, in order');
                const states = await b.page.evaluate(() => window.chat.states);
                assert.ok(states.includes('reconnecting'), `the drop was seen: ${states}`);
                assert.ok(b.traffic.wsOpened >= 2, 'a new WebSocket was opened');
                await waitLive(b.page, 'websocket');
                await send(b, 'I am back.');
                await waitShown(a.page, ['I am back.']);
                await closeAll(a, b);
            } finally {
                await proxy.close();
            }
        });

        if (kind.startsWith('nginx')) {
            test('an nginx reload closes WebSockets; the page resumes without loss', async () => {
                const channel = newChannel();
                const a = await openChat(browser, server.base, 'Ada', { channel, transport: 'websocket' });
                const b = await openChat(browser, server.base, 'Grace', { channel, transport: 'websocket' });
                const want = [];
                for (let i = 1; i <= 20; i++) {
                    want.push(`reload message ${i}`);
                    await publishHttp(server.base, channel, chatJson('Ada', want.at(-1)));
                    if (i === 5) {
                        await server.reload();
                    }
                    await sleep(30);
                }
                const list = await waitShown(b.page, want, 20000);
                assert.deepEqual(texts(list), want, 'every message once, in order');
                assert.ok(b.traffic.wsOpened >= 2, 'the reload closed the WebSocket and the page reopened it');
                await waitLive(b.page, 'websocket');
                await closeAll(a, b);
            });
        }

        test('the page says so when the server is gone, and recovers when it is back', async () => {
            /* A server of its own, stopped and started again on its port. */
            let own = await startServer(kind);
            const port = own.port;
            try {
                const channel = newChannel();
                const a = await openChat(browser, own.base, 'Ada', { channel });
                await send(a, 'still here?');
                await waitShown(a.page, ['still here?']);
                await own.stop();

                /* (A server that stops gracefully may first close the
                 * WebSocket with 1001, which the page quotes; then the
                 * reconnection attempts fail.) */
                await a.page.waitForFunction(
                    () => /Can't reach/.test(document.getElementById('error').textContent)
                          && !document.getElementById('error').hidden, null, { timeout: 15000 });
                const error = await a.page.textContent('#error');
                assert.match(error, new RegExp(`Can't reach the chat server at 127\\.0\\.0\\.1:${port}`));
                assert.match(error, /Trying again in \d+ s/);
                assert.match(await a.page.getAttribute('#conn', 'data-state'), /^(re)?connecting$/);

                await a.page.fill('#text', 'this cannot be sent now');
                await a.page.press('#text', 'Enter');
                await a.page.waitForSelector('#send-error:not([hidden])', { timeout: 10000 });
                assert.match(await a.page.textContent('#send-error'),
                             new RegExp(`Your message was not sent: cannot reach the server at 127\\.0\\.0\\.1:${port}`));
                assert.match(await a.page.textContent('#error'), /Can't reach the chat server/,
                             'the connection error stays');
                assert.equal(await a.page.inputValue('#text'), 'this cannot be sent now',
                             'the message stays in the box');
                await screenshot(a.page, `${kind}-server-gone`);

                await own.cleanup();
                own = await startServer(kind, { port });
                /* The backoff stays under 15 s; the page comes back alone. */
                await a.page.waitForFunction(() => window.chat.sub.state === 'open', null,
                                             { timeout: 25000 });
                assert.equal(await a.page.isHidden('#error'), true, 'the error went away');
                await a.page.press('#text', 'Enter');
                await waitShown(a.page, ['this cannot be sent now']);
                assert.equal(await a.page.isHidden('#send-error'), true);
                await a.page.close();
            } finally {
                const bad = own.badLogLines();
                await own.cleanup();
                assert.deepEqual(bad, [], `${kind} logged problems`);
            }
        });
    });
}
