/*
 * pushq.js -- browser client for pushq channels (SPEC.md).
 *
 * One ES module without dependencies:
 *
 *     import { subscribe, publish } from './pushq.js';
 *
 * Loading it also defines `window.PushQ` (the same functions), so a page
 * without a bundler or imports can use it from any script once the module
 * has run (`<script type="module" src="pushq.js"></script>`; module scripts
 * run before DOMContentLoaded).
 *
 * What it does:
 * - subscribe(channel, onMessage, options): WebSocket first (format=json),
 *   long-poll as fallback when WebSocket cannot be opened, or either one
 *   alone (options.transport).
 * - Reconnects after any failure with exponential backoff and jitter.
 * - Resumes without loss: it is a named client (options.name, or a name it
 *   makes up and keeps in sessionStorage) and, once it has seen a message,
 *   it asks for `last_id=<last id seen>` on every (re)connection, so a
 *   message handed to a connection that then broke is sent again. The last
 *   id is kept in sessionStorage, so a page reload resumes where it was.
 * - publish(): over the open WebSocket when there is one, else HTTP POST.
 * - close().
 */

const DEFAULTS = {
    url: '/sub',              /* subscriber location (long-poll + WebSocket) */
    publishUrl: '/pub',       /* publisher location, for HTTP publish */
    transport: 'auto',        /* 'auto' | 'websocket' | 'longpoll' */
    name: undefined,          /* named client; undefined: made up, kept per tab */
    lastId: undefined,        /* first cursor, e.g. 0 for the buffered history */
    resume: true,             /* a stored last id (page reload) beats lastId */
    wsPublish: true,          /* publish() over the open WebSocket */
    pollTimeout: 25,          /* seconds a long-poll waits on the server */
    batch: 100,               /* messages per long-poll answer */
    backoff: { initial: 500, max: 15000, factor: 2, jitter: 0.5 },
    onState: null,            /* (state, info) => void */
    onLost: null,             /* (count, info) => void: messages gone from the buffer */
};

const STORE_PREFIX = 'pushq:';

/* sessionStorage may be missing or throw (privacy modes, sandboxed frames):
 * then nothing is kept across reloads, and everything else still works. */
function storageGet(key) {
    try {
        return globalThis.sessionStorage ? globalThis.sessionStorage.getItem(key) : null;
    } catch (e) {
        return null;
    }
}

function storageSet(key, value) {
    try {
        if (globalThis.sessionStorage) {
            globalThis.sessionStorage.setItem(key, value);
        }
    } catch (e) {
        /* quota or disabled storage: resume-after-reload is lost, not more */
    }
}

function storageRemove(key) {
    try {
        if (globalThis.sessionStorage) {
            globalThis.sessionStorage.removeItem(key);
        }
    } catch (e) {
        /* nothing kept, nothing to forget */
    }
}

function absolute(url) {
    const base = globalThis.location ? globalThis.location.href : 'http://localhost/';
    return new URL(url, base);
}

function randomName() {
    const bytes = new Uint8Array(9);
    globalThis.crypto.getRandomValues(bytes);
    let s = 'u-';
    for (const b of bytes) {
        s += b.toString(16).padStart(2, '0');
    }
    return s;
}

function decodeBase64(s) {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) {
        out[i] = bin.charCodeAt(i);
    }
    return out;
}

/* One message of a long-poll answer or a format=json frame -> payload. */
function payloadOf(m) {
    if (m.encoding === 'base64') {
        return decodeBase64(m.msg);
    }
    return m.msg;
}

/* Error text a person can act on, with the server's own words if it sent
 * a JSON error. */
async function httpError(res, what) {
    let detail = '';
    try {
        const body = await res.json();
        if (body && body.error) {
            detail = ': ' + body.error;
        }
    } catch (e) {
        /* not JSON (a proxy's page): the status alone */
    }
    const err = new Error(`${what} answered HTTP ${res.status}${detail}`);
    err.status = res.status;
    return err;
}

/**
 * Publishes one message over HTTP.
 *   channel: the channel name ('' or undefined: 'default')
 *   message: a string (text) or an ArrayBuffer / typed array (binary)
 *   options.publishUrl: the publisher location (default '/pub')
 * Resolves to the server's answer {status, id, channel, subscribers};
 * rejects with an Error saying what went wrong.
 */
export async function publish(channel, message, options = {}) {
    const u = absolute(options.publishUrl || DEFAULTS.publishUrl);
    if (channel) {
        u.searchParams.set('channel', channel);
    }
    const binary = typeof message !== 'string';
    let res;
    try {
        res = await fetch(u, {
            method: 'POST',
            headers: {
                'Content-Type': binary ? 'application/octet-stream'
                                       : 'text/plain;charset=utf-8',
            },
            body: message,
            cache: 'no-store',
        });
    } catch (e) {
        throw new Error(`cannot reach the server at ${u.host}`, { cause: e });
    }
    if (!res.ok) {
        throw await httpError(res, `publishing to ${u.pathname}`);
    }
    return res.json();
}

/**
 * A live subscription; made by subscribe(). Read-only properties:
 *   state      'connecting' | 'open' | 'reconnecting' | 'closed' | 'error'
 *   transport  'websocket' | 'longpoll' (the one in use or being tried)
 *   lastId     id of the last message delivered, or null
 *   name       the named client it subscribes as
 */
export class Subscription {
    constructor(channel, onMessage, options = {}) {
        this.channel = channel || 'default';
        this.onMessage = onMessage;
        this.options = { ...DEFAULTS, ...options,
                         backoff: { ...DEFAULTS.backoff, ...(options.backoff || {}) } };
        const o = this.options;
        if (!['auto', 'websocket', 'longpoll'].includes(o.transport)) {
            throw new Error(`transport must be 'auto', 'websocket' or 'longpoll', not '${o.transport}'`);
        }
        this.url = absolute(o.url);
        const where = `${this.url.origin}${this.url.pathname}:${this.channel}`;

        this.name = o.name;
        if (!this.name) {
            const key = `${STORE_PREFIX}name:${where}`;
            this.name = storageGet(key) || randomName();
            storageSet(key, this.name);
        }
        this.storeKey = `${STORE_PREFIX}last:${where}:${this.name}`;

        this.lastId = null;
        const stored = o.resume ? storageGet(this.storeKey) : null;
        if (stored !== null && /^[0-9]+$/.test(stored)) {
            this.lastId = Number(stored);
        } else if (Number.isInteger(o.lastId) && o.lastId >= 0) {
            this.lastId = o.lastId;   /* e.g. 0: the history first */
        }

        this.state = 'connecting';
        this.transport = o.transport === 'longpoll' ? 'longpoll' : 'websocket';
        this.failures = 0;            /* consecutive failed attempts */
        this.closed = false;
        this.ws = null;
        this.abort = null;            /* AbortController of the running poll */
        this.timer = null;            /* pending reconnect */
        this.stableTimer = null;      /* resets failures once a WebSocket held */
        this.connect();
    }

    /* -- public -------------------------------------------------------- */

    /** Publishes to this subscription's channel: over its WebSocket when
     *  one is open (and options.wsPublish), else over HTTP. Resolves to
     *  {status: true, via, ...}; rejects with an Error. */
    publish(message) {
        const ws = this.ws;
        if (this.options.wsPublish && ws && ws.readyState === WebSocket.OPEN) {
            ws.send(message);
            return Promise.resolve({ status: true, via: 'websocket', channel: this.channel });
        }
        return publish(this.channel, message, this.options)
            .then((answer) => ({ ...answer, via: 'http' }));
    }

    /** Stops receiving, for good. The stored last id stays, so a page that
     *  subscribes again (or reloads) resumes from there, unless
     *  close({forget: true}). */
    close(how = {}) {
        if (how.forget) {
            storageRemove(this.storeKey);
        }
        if (this.closed) {
            return;
        }
        this.closed = true;
        clearTimeout(this.timer);
        clearTimeout(this.stableTimer);
        this.stopTransport();
        this.setState('closed', {});
    }

    /* -- internals ----------------------------------------------------- */

    setState(state, info) {
        this.state = state;
        if (this.options.onState) {
            try {
                this.options.onState(state, { transport: this.transport, ...info });
            } catch (e) {
                setTimeout(() => { throw e; });
            }
        }
    }

    stopTransport() {
        if (this.ws) {
            const ws = this.ws;
            this.ws = null;
            ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
            try {
                ws.close(1000, 'closed by the page');
            } catch (e) {
                /* already closing */
            }
        }
        if (this.abort) {
            this.abort.abort();
            this.abort = null;
        }
    }

    query(extra) {
        const u = new URL(this.url);
        u.searchParams.set('channel', this.channel);
        u.searchParams.set('name', this.name);
        if (this.lastId !== null) {
            u.searchParams.set('last_id', String(this.lastId));
        }
        for (const [k, v] of Object.entries(extra)) {
            u.searchParams.set(k, String(v));
        }
        return u;
    }

    connect() {
        if (this.closed) {
            return;
        }
        if (this.transport === 'websocket') {
            this.openWebSocket();
        } else {
            this.poll(true);
        }
    }

    /* A failed attempt: wait (exponential backoff, jitter so that a crowd
     * of clients does not come back in step), then connect again. */
    retry(error, nextTransport) {
        if (this.closed) {
            return;
        }
        this.stopTransport();
        clearTimeout(this.stableTimer);
        this.failures++;
        const b = this.options.backoff;
        const full = Math.min(b.max, b.initial * Math.pow(b.factor, this.failures - 1));
        const delay = Math.round(full * (1 - b.jitter * Math.random()));
        const failed = this.transport;
        if (nextTransport) {
            this.transport = nextTransport;
        }
        this.setState('reconnecting', {
            error, attempt: this.failures, retryIn: delay, failedTransport: failed,
            server: this.url.host,
        });
        this.timer = setTimeout(() => this.connect(), delay);
    }

    /* A permanent error (the server refused our arguments): retrying would
     * get the same answer. */
    fail(error) {
        this.stopTransport();
        this.closed = true;
        this.setState('error', { error, server: this.url.host });
    }

    /* Connected. The backoff starts over once the connection proved
     * itself: a long-poll answer or a WebSocket message does at once, a
     * WebSocket that stays open for 5 s too; a server that accepts and
     * drops at once keeps backing off. */
    opened(proven) {
        clearTimeout(this.stableTimer);
        if (proven) {
            this.failures = 0;
        } else {
            this.stableTimer = setTimeout(() => { this.failures = 0; }, 5000);
        }
        if (this.state !== 'open') {
            this.setState('open', {});
        }
    }

    deliver(m, meta) {
        if (this.closed) {
            return;
        }
        const id = m.id;
        /* The server sends only ids above the last_id we gave, so an id not
         * above the last one means the channel was forgotten and restarted
         * (the server also says "reset": true). */
        const reset = Boolean(meta.reset) || (this.lastId !== null && id <= this.lastId);
        this.lastId = id;
        if (this.options.resume) {
            storageSet(this.storeKey, String(id));
        }
        this.onMessage(payloadOf(m), {
            id, channel: this.channel, transport: this.transport,
            binary: m.encoding === 'base64', lost: meta.lost || 0, reset,
        });
    }

    lost(count) {
        if (count && this.options.onLost) {
            this.options.onLost(count, { channel: this.channel, lastId: this.lastId });
        }
    }

    /* -- WebSocket ----------------------------------------------------- */

    openWebSocket() {
        const u = this.query({ format: 'json' });
        u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
        let ws;
        try {
            ws = new WebSocket(u);
        } catch (e) {
            this.wsFailed(`cannot open a WebSocket to ${u.host}: ${e.message}`, false);
            return;
        }
        this.ws = ws;
        let wasOpen = false;
        ws.onopen = () => {
            wasOpen = true;
            this.opened(false);
        };
        ws.onmessage = (ev) => {
            let m;
            try {
                m = JSON.parse(ev.data);
            } catch (e) {
                this.fail(`the server sent a frame that is not JSON: is ${this.url.pathname} a pushq subscriber?`);
                return;
            }
            this.failures = 0;
            if (m.lost) {
                this.lost(m.lost);
            }
            if (m.status) {
                this.deliver(m, m);
            }
        };
        ws.onerror = () => { /* onclose follows, with the code */ };
        ws.onclose = (ev) => {
            if (this.ws !== ws) {
                return;
            }
            this.ws = null;
            const why = ev.code === 1006 ? 'connection lost'
                      : `closed by the server with code ${ev.code}${ev.reason ? ' (' + ev.reason + ')' : ''}`;
            this.wsFailed(wasOpen ? `WebSocket ${why}` : `cannot open a WebSocket to ${u.host}`, wasOpen);
        };
    }

    wsFailed(error, wasOpen) {
        if (!wasOpen && this.options.transport === 'auto') {
            /* WebSocket never opened: try long-poll at once. If long-poll
             * works we stay on it; if the server is gone altogether the
             * poll fails too and the backoff starts from there. */
            this.stopTransport();
            this.transport = 'longpoll';
            this.setState('connecting', { fallback: true, error });
            this.poll(true);
            return;
        }
        this.retry(error);
    }

    /* -- long-poll ----------------------------------------------------- */

    async poll(first) {
        if (this.closed) {
            return;
        }
        const o = this.options;
        /* The first request of a connection answers at once (timeout=0):
         * it proves the server is there and brings what is waiting. */
        const timeout = first ? 0 : o.pollTimeout;
        const u = this.query({ batch: o.batch, timeout });
        const ctrl = new AbortController();
        this.abort = ctrl;
        /* A server or a network that swallows a request without answering
         * must not stall us forever. */
        const guard = setTimeout(() => ctrl.abort(), (timeout + 15) * 1000);
        let res, body;
        try {
            res = await fetch(u, { signal: ctrl.signal, cache: 'no-store',
                                   headers: { Accept: 'application/json' } });
            if (!res.ok) {
                const err = await httpError(res, this.url.pathname);
                clearTimeout(guard);
                if (this.abort !== ctrl) {
                    return;
                }
                /* 4xx: our request is wrong and will stay wrong, except 408
                 * and 429 which say "later". 5xx and 503 (store full): later. */
                if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
                    this.fail(err.message);
                } else {
                    this.longpollFailed(err.message);
                }
                return;
            }
            body = await res.json();
        } catch (e) {
            clearTimeout(guard);
            if (this.abort !== ctrl) {
                return;       /* closed or replaced by us */
            }
            this.longpollFailed(e.name === 'AbortError'
                ? `no answer from ${this.url.host} within ${timeout + 15} s`
                : `cannot reach the server at ${this.url.host}`);
            return;
        }
        clearTimeout(guard);
        if (this.abort !== ctrl || this.closed) {
            return;
        }
        this.abort = null;
        this.opened(true);
        if (body.lost) {
            this.lost(body.lost);
        }
        if (body.status) {
            const list = Array.isArray(body.msgs) ? body.msgs
                       : [{ id: body.id, msg: body.msg, encoding: body.encoding }];
            let meta = { lost: body.lost, reset: body.reset };
            for (const m of list) {
                this.deliver(m, meta);
                meta = {};
                if (this.closed || this.transport !== 'longpoll') {
                    return;
                }
            }
        }
        this.poll(false);
    }

    longpollFailed(error) {
        /* In auto mode the next attempt tries WebSocket again: the server
         * may have come back with WebSocket working. */
        this.retry(error, this.options.transport === 'auto' ? 'websocket' : undefined);
    }
}

/**
 * Subscribes to `channel`; calls onMessage(payload, info) for each message
 * in order, where payload is a string (text) or a Uint8Array (binary) and
 * info is {id, channel, transport, binary, lost, reset}.
 * Returns a Subscription (publish(), close(), state, transport, lastId).
 */
export function subscribe(channel, onMessage, options = {}) {
    return new Subscription(channel, onMessage, options);
}

export const version = '1.0.0';

const PushQ = { subscribe, publish, Subscription, version };
export default PushQ;

if (typeof globalThis !== 'undefined') {
    globalThis.PushQ = PushQ;
}
