// Servers for the browser tests: Debian's nginx with build/out's module, and
// build/out/pushq-civetweb, each from a private temporary directory, on a
// free loopback port, serving examples/ as the document root (the demo at
// /chat/, the seed page at /seed-chat.html), jQuery at /vendor/ and the test
// pages at /test-pages/.  Plus a TCP proxy that can cut connections.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const EXAMPLES = path.join(REPO, 'examples');
const VENDOR = path.join(REPO, 'tests/browser/node_modules/jquery/dist');
const TEST_PAGES = path.join(REPO, 'tests/browser/pages');
const NGINX_MODULE = path.join(REPO, 'build/out/ngx_http_pushq_module.so');
const CIVETWEB_PROGRAM = path.join(REPO, 'build/out/pushq-civetweb');
const NGINX = '/usr/sbin/nginx';

/* nginx4: nginx with worker_processes 4 (a reconnection may land on
 * another worker). */
export const KINDS = ['nginx', 'nginx4', 'civetweb'];

/* PUSHQ_BROWSER_SERVERS=nginx,nginx4,civetweb (the default) picks the
 * servers; `only` narrows to the kinds a test file runs against. */
export function selectedKinds(only = KINDS) {
    const env = (process.env.PUSHQ_BROWSER_SERVERS || '').trim();
    if (!env) {
        return KINDS.filter((k) => only.includes(k));
    }
    const kinds = env.split(',').map((k) => k.trim()).filter(Boolean);
    for (const k of kinds) {
        if (!KINDS.includes(k)) {
            throw new Error(`PUSHQ_BROWSER_SERVERS: unknown kind "${k}"; known: ${KINDS.join(', ')}`);
        }
    }
    return kinds.filter((k) => only.includes(k));
}

export function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* Waits until GET base/status answers 200, or the process dies. */
async function waitReady(base, child, logFile) {
    const deadline = Date.now() + 15000;
    let last = '';
    while (Date.now() < deadline) {
        if (child.exitCode !== null) {
            break;
        }
        try {
            const res = await fetch(`${base}/status`, { signal: AbortSignal.timeout(1000) });
            if (res.ok) {
                return;
            }
            last = `HTTP ${res.status}`;
        } catch (e) {
            last = e.message;
        }
        await sleep(100);
    }
    const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(-2000) : '';
    throw new Error(`server did not come up at ${base} (${child.exitCode !== null
        ? 'exited with ' + child.exitCode : last}):\n${log}`);
}

function waitExit(child, ms) {
    if (child.exitCode !== null || child.signalCode !== null) {
        return Promise.resolve(true);
    }
    return new Promise((resolve) => {
        const t = setTimeout(() => resolve(false), ms);
        child.once('exit', () => {
            clearTimeout(t);
            resolve(true);
        });
    });
}

/* Lines of a server log that mean something went wrong in pushq. */
const BAD_LOG = /\[(alert|crit|emerg)\]|Sanitizer|runtime error:/;

class Server {
    constructor(kind, child, dir, base, port, logFile) {
        this.kind = kind;
        this.child = child;
        this.dir = dir;
        this.base = base;
        this.port = port;
        this.logFile = logFile;
    }

    /* Log lines that must not appear in a healthy run. */
    badLogLines() {
        if (!fs.existsSync(this.logFile)) {
            return [];
        }
        return fs.readFileSync(this.logFile, 'utf8').split('\n').filter((l) => BAD_LOG.test(l));
    }

    async stop() {
        if (this.child.exitCode === null && this.child.signalCode === null) {
            /* nginx: QUIT is the graceful stop; pushq-civetweb and demo.sh
             * (which stops its nginx): TERM. */
            this.child.kill(this.kind === 'nginx' ? 'SIGQUIT' : 'SIGTERM');
            if (!(await waitExit(this.child, 5000))) {
                killGroup(this.child, 'SIGKILL');
                await waitExit(this.child, 2000);
            }
        }
        /* nginx workers left behind by a master that did not stop cleanly
         * would keep the port. */
        killGroup(this.child, 'SIGKILL');
        live.delete(this.child);
    }

    async cleanup() {
        await this.stop();
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}

/* Every server runs in a process group of its own (detached), so that the
 * whole group can be killed; whatever is still running when the test
 * process exits is killed then. */
const live = new Set();

function killGroup(child, signal) {
    try {
        process.kill(-child.pid, signal);
    } catch (e) {
        /* the group is gone already */
    }
}

process.on('exit', () => {
    for (const child of live) {
        killGroup(child, 'SIGKILL');
    }
});

function spawnLogged(cmd, args, logFile, opts = {}) {
    const out = fs.openSync(logFile, 'a');
    const child = spawn(cmd, args, { stdio: ['ignore', out, out], detached: true, ...opts });
    fs.closeSync(out);
    live.add(child);
    return child;
}

class NginxServer extends Server {
    /* nginx reload: new workers start, the old ones close their WebSockets
     * (1001) and exit; the store is shared memory and survives. */
    async reload() {
        const errlog = path.join(this.dir, 'logs/error.log');
        const before = fs.readFileSync(errlog, 'utf8').length;
        process.kill(this.child.pid, 'SIGHUP');
        const deadline = Date.now() + 10000;
        while (Date.now() < deadline) {
            const text = fs.readFileSync(errlog, 'utf8').slice(before);
            if (/start worker process/.test(text)) {
                return;
            }
            await sleep(50);
        }
        throw new Error('nginx did not reload within 10 s');
    }
}

/*
 * settings: pushq directives without the prefix, e.g. {longpoll_timeout: '5s'}.
 * port: a fixed port (to restart a server where a page expects it).
 */
export async function startNginx({ workers = 1, port = 0, settings = {} } = {}) {
    if (!fs.existsSync(NGINX_MODULE)) {
        throw new Error(`${NGINX_MODULE} is missing: run make first`);
    }
    port = port || await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushq-browser-nginx-'));
    for (const d of ['logs', 'tmp']) {
        fs.mkdirSync(path.join(dir, d));
    }
    const directives = Object.entries(settings)
        .map(([k, v]) => `        pushq_${k} ${v};`).join('\n');
    const conf = `
load_module ${NGINX_MODULE};
${process.getuid() === 0 ? 'user root;' : ''}
worker_processes ${workers};
pid logs/nginx.pid;
error_log logs/error.log notice;
events { worker_connections 1024; }
http {
    access_log logs/access.log;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    types {
        text/html html;
        text/css css;
        text/javascript js mjs;
        image/png png;
        application/json map;
    }
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:${port};
        root ${EXAMPLES};
${directives}
        location /vendor/ { alias ${VENDOR}/; }
        location /test-pages/ { alias ${TEST_PAGES}/; }
        location = /pub { pushq_publisher; }
        location = /sub { pushq_subscriber; }
        location = /sub-longpoll { pushq_subscriber longpoll; }
        location = /send_msg/ { pushq_publisher; }
        location = /get_msg/ { pushq_subscriber; }
        location = /status { pushq_status; }
    }
}
`;
    fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
    const logFile = path.join(dir, 'logs/error.log');
    const child = spawnLogged(NGINX, ['-p', dir, '-c', 'nginx.conf', '-g', 'daemon off;'],
                              path.join(dir, 'logs/stderr.log'));
    const base = `http://127.0.0.1:${port}`;
    const server = new NginxServer('nginx', child, dir, base, port, logFile);
    try {
        await waitReady(base, child, logFile);
    } catch (e) {
        await server.cleanup();
        throw e;
    }
    return server;
}

/* pushq-civetweb reads `name value` lines: CivetWeb's own options
 * (listening_ports, document_root, ...) and pushq's (publisher_uri, ...). */
export async function startCivetweb({ port = 0, settings = {} } = {}) {
    if (!fs.existsSync(CIVETWEB_PROGRAM)) {
        throw new Error(`${CIVETWEB_PROGRAM} is missing: run make first`);
    }
    port = port || await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushq-browser-civetweb-'));
    /* CivetWeb has no alias: the document root is a directory of links. */
    const root = path.join(dir, 'root');
    fs.mkdirSync(root);
    for (const entry of fs.readdirSync(EXAMPLES)) {
        fs.symlinkSync(path.join(EXAMPLES, entry), path.join(root, entry));
    }
    fs.symlinkSync(VENDOR, path.join(root, 'vendor'));
    fs.symlinkSync(TEST_PAGES, path.join(root, 'test-pages'));
    const options = {
        listening_ports: `127.0.0.1:${port}`,
        document_root: root,
        num_threads: '64',
        publisher_uri: '/pub,/send_msg/',
        subscriber_uri: '/sub,/get_msg/',
        status_uri: '/status',
        ...settings,
    };
    const confFile = path.join(dir, 'pushq-civetweb.conf');
    fs.writeFileSync(confFile, Object.entries(options).map(([k, v]) => `${k} ${v}\n`).join(''));
    const logFile = path.join(dir, 'server.log');
    const child = spawnLogged(CIVETWEB_PROGRAM, [confFile], logFile);
    const base = `http://127.0.0.1:${port}`;
    const server = new Server('civetweb', child, dir, base, port, logFile);
    try {
        await waitReady(base, child, logFile);
    } catch (e) {
        await server.cleanup();
        throw e;
    }
    return server;
}

/*
 * The demo as a newcomer starts it, on a free port instead of 8080/8090:
 * 'nginx' runs nginx_module/demo.sh (what `make demo` runs), 'civetweb'
 * runs pushq-civetweb with civetweb_plugin/pushq-civetweb.conf from the
 * repository's top directory, only listening_ports changed.
 */
export async function startDemo(kind) {
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pushq-browser-demo-${kind}-`));
    const logFile = path.join(dir, 'output.log');
    let child;
    if (kind === 'nginx') {
        child = spawnLogged('bash', [path.join(REPO, 'nginx_module/demo.sh'), NGINX_MODULE,
                                     path.join(REPO, 'examples/chat'), path.join(dir, 'prefix'),
                                     String(port)], logFile, { cwd: REPO });
    } else {
        const conf = fs.readFileSync(path.join(REPO, 'civetweb_plugin/pushq-civetweb.conf'), 'utf8')
            .replace(/^listening_ports\s.*$/m, `listening_ports 127.0.0.1:${port}`);
        const confFile = path.join(dir, 'pushq-civetweb.conf');
        fs.writeFileSync(confFile, conf);
        child = spawnLogged(CIVETWEB_PROGRAM, [confFile], logFile, { cwd: REPO });
    }
    const base = `http://127.0.0.1:${port}`;
    const server = new Server(`${kind}-demo`, child, dir, base, port, logFile);
    try {
        await waitReady(base, child, logFile);
        if (kind === 'nginx') {
            /* demo.sh prints the URL once nginx answers. */
            const deadline = Date.now() + 5000;
            while (!fs.readFileSync(logFile, 'utf8').includes(`pushq chat demo: ${base}/`)) {
                assertTrue(Date.now() < deadline, `demo.sh did not print ${base}/`);
                await sleep(50);
            }
        }
    } catch (e) {
        await server.cleanup();
        throw e;
    }
    return server;
}

function assertTrue(ok, what) {
    if (!ok) {
        throw new Error(what);
    }
}

export function startServer(kind, opts = {}) {
    if (kind === 'nginx') {
        return startNginx(opts);
    }
    if (kind === 'nginx4') {
        return startNginx({ workers: 4, ...opts });
    }
    if (kind === 'civetweb') {
        return startCivetweb(opts);
    }
    throw new Error(`unknown server kind ${kind}`);
}

/*
 * A TCP proxy in front of a server, for what a network does to a
 * connection: cutAll() resets every connection in both directions (the
 * browser sees its WebSocket drop with 1006, the server sees its peer
 * gone), refuse(ms) turns new connections away for a while, and
 * refuseWebSocket makes it answer 400 to WebSocket handshakes, as a proxy
 * that does not pass Upgrade would.
 */
export async function startProxy(targetPort, { refuseWebSocket = false } = {}) {
    const pairs = new Set();
    let refuseUntil = 0;
    const server = net.createServer((client) => {
        if (Date.now() < refuseUntil) {
            client.resetAndDestroy();
            return;
        }
        const upstream = net.connect(targetPort, '127.0.0.1');
        const pair = { client, upstream };
        pairs.add(pair);
        const end = () => {
            pairs.delete(pair);
            client.destroy();
            upstream.destroy();
        };
        let first = true;
        client.on('data', (chunk) => {
            if (first && refuseWebSocket
                && /\r\nupgrade:\s*websocket/i.test(chunk.toString('latin1'))) {
                client.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n'
                           + 'Connection: close\r\n\r\n');
                upstream.destroy();
                pairs.delete(pair);
                return;
            }
            first = false;
            upstream.write(chunk);
        });
        upstream.on('data', (chunk) => client.write(chunk));
        client.on('close', end);
        upstream.on('close', end);
        client.on('error', end);
        upstream.on('error', end);
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = server.address().port;
    return {
        port,
        base: `http://127.0.0.1:${port}`,
        connections: () => pairs.size,
        cutAll() {
            for (const { client, upstream } of pairs) {
                client.resetAndDestroy();
                upstream.destroy();
            }
            pairs.clear();
        },
        refuse(ms) {
            refuseUntil = Date.now() + ms;
        },
        close() {
            this.cutAll();
            return new Promise((resolve) => server.close(resolve));
        },
    };
}
