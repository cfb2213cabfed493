// The demo as shipped: `make demo`'s nginx (nginx_module/demo.sh) and
// pushq-civetweb with its default configuration both serve examples/chat/
// at "/", and the page chats there.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { newChannel, openChat, send, serverAndBrowser, waitShown } from './lib/browser.mjs';
import { selectedKinds, startDemo } from './lib/servers.mjs';

for (const kind of selectedKinds(['nginx', 'civetweb'])) {
    describe(`the demo as ${kind === 'nginx' ? '`make demo`' : 'pushq-civetweb\'s default configuration'} serves it`, () => {
        let server;
        let browser;

        serverAndBrowser(kind, startDemo, (s, b) => {
            server = s;
            browser = b;
        });

        test('the page at / chats, over WebSocket and long-poll', async () => {
            const res = await fetch(`${server.base}/`);
            assert.equal(res.status, 200);
            assert.match(await res.text(), /<title>pushq chat<\/title>/);
            const js = await fetch(`${server.base}/pushq.js`);
            assert.equal(js.status, 200, 'pushq.js is served next to the page');
            assert.match(js.headers.get('content-type') || '', /javascript/,
                         'a module script needs a JavaScript MIME type');

            /* No ?sub= or ?pub=: the page's defaults must match the config. */
            const channel = newChannel('demo');
            const a = await openChat(browser, server.base, 'Ada', { path: '/', channel, transport: 'auto' });
            const b = await openChat(browser, server.base, 'Grace', { path: '/', channel, transport: 'longpoll' });
            await send(a, 'Served by the demo configuration.');
            await send(b, 'And answered over long-poll.');
            const want = ['Served by the demo configuration.', 'And answered over long-poll.'];
            for (const c of [a, b]) {
                assert.deepEqual((await waitShown(c.page, want)).map((m) => m.text), want);
            }
        });
    });
}
