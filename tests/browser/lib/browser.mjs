// Debian's Chromium, headless, driven by playwright-core (no downloaded
// browser), with a fresh profile per launch; and helpers to drive the chat
// demo page.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';
import { REPO } from './servers.mjs';

export const CHROMIUM = process.env.PUSHQ_CHROMIUM || '/usr/bin/chromium';
export const SCREENSHOTS = path.join(REPO, 'build/out/screenshots');

const ARGS = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/*
 * For a describe block: starts a server (with `start`) and a browser
 * before its tests and hands both to `use`; after them closes the browser,
 * stops the server and fails when the server logged problems or a page
 * threw.
 */
export function serverAndBrowser(kind, start, use) {
    let server;
    let browser;

    before(async () => {
        server = await start(kind);
        browser = await launchBrowser();
        use(server, browser);
    });

    after(async () => {
        if (browser) {
            await browser.close();
        }
        if (server) {
            const bad = server.badLogLines();
            await server.cleanup();
            assert.deepEqual(bad, [], `${kind} logged problems`);
        }
        assert.deepEqual(browser ? browser.pageErrors : [], [], 'uncaught errors in pages');
    });
}

export async function launchBrowser() {
    if (!fs.existsSync(CHROMIUM)) {
        throw new Error(`${CHROMIUM} is missing: apt-get install chromium (build/install-deps.sh does)`);
    }
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'pushq-chromium-'));
    const ctx = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: ARGS,
        viewport: { width: 760, height: 600 },
    });
    const pageErrors = [];
    ctx.on('page', (page) => watchPage(page, pageErrors));
    for (const page of ctx.pages()) {
        watchPage(page, pageErrors);
    }
    return {
        ctx,
        pageErrors,
        async newPage() {
            return ctx.newPage();
        },
        async close() {
            await ctx.close();
            fs.rmSync(profile, { recursive: true, force: true });
        },
    };
}

/* Uncaught exceptions in a page fail the test that made them. */
function watchPage(page, pageErrors) {
    page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
}

export async function screenshot(page, name) {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    const file = path.join(SCREENSHOTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
}

export function newChannel(prefix = 'b') {
    return `${prefix}-${crypto.randomBytes(5).toString('hex')}`;
}

/*
 * Records what a page's pushq connections carried: the text of every
 * WebSocket frame received and sent, and every long-poll answer's body.
 */
export function trackTraffic(page) {
    const t = { wsReceived: [], wsSent: [], wsOpened: 0, wsClosed: 0, pollBodies: [] };
    page.on('websocket', (ws) => {
        t.wsOpened++;
        ws.on('framereceived', (f) => t.wsReceived.push(String(f.payload)));
        ws.on('framesent', (f) => t.wsSent.push(String(f.payload)));
        ws.on('close', () => t.wsClosed++);
    });
    page.on('response', async (res) => {
        const u = new URL(res.url());
        if (/^\/(sub|get_msg\/|sub-longpoll)$/.test(u.pathname) && res.request().method() === 'GET') {
            try {
                t.pollBodies.push(await res.text());
            } catch (e) {
                /* page gone before the body was read */
            }
        }
    });
    return t;
}

/*
 * Opens the chat demo (at opts.path, default /chat/) and joins as `name`.
 * opts.channel, opts.transport (auto|websocket|longpoll), opts.sub and
 * opts.pub go into the page's URL.  Waits
 * until the page is live over the expected transport.
 */
export async function openChat(browser, base, name, opts = {}) {
    const page = await browser.newPage();
    const traffic = trackTraffic(page);
    const q = new URLSearchParams();
    for (const k of ['channel', 'transport', 'sub', 'pub']) {
        if (opts[k]) {
            q.set(k, opts[k]);
        }
    }
    await page.goto(`${base}${opts.path || '/chat/'}?${q}`);
    await page.fill('#join-name', name);
    await page.press('#join-name', 'Enter');
    await waitLive(page, opts.expect || (opts.transport === 'longpoll' ? 'longpoll' : 'websocket'));
    return { page, traffic, name };
}

export async function waitLive(page, transport, timeout = 15000) {
    await page.waitForFunction(
        (t) => window.chat && window.chat.sub && window.chat.sub.state === 'open'
               && window.chat.sub.transport === t,
        transport, { timeout });
    const label = transport === 'websocket' ? 'WebSocket' : 'long-poll';
    assert.equal(await page.textContent('#conn'), `live over ${label}`);
}

/* Types a message into the page and sends it (Enter, or the button). */
export async function send(chat, text, { button = false } = {}) {
    await chat.page.fill('#text', text);
    if (button) {
        await chat.page.click('#send-button');
    } else {
        await chat.page.press('#text', 'Enter');
    }
    await chat.page.waitForFunction(() => document.getElementById('text').value === '',
                                    null, { timeout: 10000 });
}

/* The chat messages a page shows, in order: [{from, text, mine}]. */
export function shown(page) {
    return page.$$eval('#messages li:not(.notice)', (lis) => lis.map((li) => ({
        from: li.querySelector('.from').textContent,
        text: li.querySelector('.text').textContent,
        mine: li.classList.contains('mine'),
        id: Number(li.dataset.id),
    })));
}

/* Waits until the page shows every text of `texts`; returns what it shows. */
export async function waitShown(page, texts, timeout = 15000) {
    await page.waitForFunction((want) => {
        const have = new Set([...document.querySelectorAll('#messages li .text')]
            .map((e) => e.textContent));
        return want.every((w) => have.has(w));
    }, texts, { timeout });
    return shown(page);
}
