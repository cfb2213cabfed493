// The pushq chat demo: everything a visitor sees, on top of pushq.js.
//
// Messages are JSON text {"from": <display name>, "sid": <sender's pushq
// name>, "text": ...} published to one channel; anything else on the
// channel (the seed page, curl -d content=hi) is shown as it came.
//
// Page arguments: ?channel=<name> (default "default", the channel the
// seed's /send_msg/ and /get_msg/ use), ?transport=auto|websocket|longpoll,
// ?sub=/sub&pub=/pub (the pushq locations).

import { subscribe } from './pushq.js';

const params = new URLSearchParams(location.search);
const channel = params.get('channel') || 'default';
const subUrl = params.get('sub') || '/sub';
const pubUrl = params.get('pub') || '/pub';
const STATE_KEY = `pushq-chat:${location.pathname}:${channel}`;
const KEEP = 200;   /* messages kept across a page reload */

const $ = (id) => document.getElementById(id);
const els = {
    conn: $('conn'), join: $('join'), joinName: $('join-name'), chat: $('chat'),
    me: $('me'), channel: $('channel'), error: $('error'), messages: $('messages'),
    send: $('send'), text: $('text'), sendButton: $('send-button'), leave: $('leave'),
    sendError: $('send-error'),
};

let sub = null;
let session = null;   /* {name, transport, items: [...]}, kept in sessionStorage */

function saveSession() {
    try {
        sessionStorage.setItem(STATE_KEY, JSON.stringify(session));
    } catch (e) {
        /* storage full or disabled: a reload starts over, nothing else */
    }
}

function loadSession() {
    try {
        return JSON.parse(sessionStorage.getItem(STATE_KEY));
    } catch (e) {
        return null;
    }
}

function timeOf(ms) {
    return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function render(item) {
    const li = document.createElement('li');
    if (item.notice) {
        li.className = 'notice';
        li.textContent = item.notice;
    } else {
        if (item.mine) {
            li.className = 'mine';
        }
        const from = document.createElement('span');
        from.className = 'from';
        from.textContent = item.from;
        const text = document.createElement('span');
        text.className = 'text';
        text.textContent = item.text;
        const time = document.createElement('span');
        time.className = 'time';
        time.textContent = timeOf(item.at);
        li.append(from, text, time);
        li.dataset.id = item.id;
    }
    const list = els.messages;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.append(li);
    if (atBottom || item.mine) {
        list.scrollTop = list.scrollHeight;
    }
}

function add(item) {
    session.items.push(item);
    if (session.items.length > KEEP) {
        session.items.splice(0, session.items.length - KEEP);
    }
    saveSession();
    render(item);
}

function notice(text) {
    add({ notice: text, at: Date.now() });
}

function showError(text, el = els.error) {
    el.hidden = !text;
    el.textContent = text || '';
}

function onMessage(payload, info) {
    let from = 'someone', text, sid = null;
    if (typeof payload !== 'string') {
        text = `[${payload.length} bytes of binary data]`;
    } else {
        try {
            const m = JSON.parse(payload);
            if (m && typeof m.text === 'string') {
                from = String(m.from || 'someone');
                text = m.text;
                sid = m.sid || null;
            }
        } catch (e) {
            /* plain text, as the seed page and curl send it */
        }
        if (text === undefined) {
            text = payload;
        }
    }
    if (info.lost) {
        notice(`${info.lost} earlier message(s) were too old to be delivered.`);
    }
    add({ id: info.id, from, text, at: Date.now(), mine: sid !== null && sid === sub.name });
}

const TRANSPORT_NAMES = { websocket: 'WebSocket', longpoll: 'long-poll' };

function onState(state, info) {
    window.chat.states.push(state);
    const badge = els.conn;
    badge.dataset.state = state;
    const how = TRANSPORT_NAMES[info.transport] || info.transport;
    if (state === 'open') {
        const fell = session.transport === 'auto' && info.transport === 'longpoll';
        badge.textContent = `live over ${how}`;
        badge.title = fell ? 'WebSocket could not be opened, so messages come by long-poll' : '';
        showError('');
    } else if (state === 'connecting') {
        badge.textContent = info.fallback ? 'trying long-poll…' : 'connecting…';
    } else if (state === 'reconnecting') {
        const secs = Math.max(1, Math.round(info.retryIn / 1000));
        badge.textContent = 'reconnecting…';
        /* Network failures all read the same to a person; an answer from
         * the server (HTTP 503, a close code) is worth quoting. */
        const unreachable = /cannot reach|cannot open|connection lost|no answer/.test(info.error);
        const what = unreachable ? `Can't reach the chat server at ${info.server}.`
                                 : `The chat server at ${info.server} dropped us (${info.error}).`;
        showError(`${what} Trying again in ${secs} s (attempt ${info.attempt}). ` +
                  'Messages sent to you meanwhile will arrive when it is back.');
    } else if (state === 'error') {
        badge.textContent = 'stopped';
        showError(`The chat server refused this page: ${info.error}. Reload the page to try again.`);
    } else if (state === 'closed') {
        badge.textContent = 'not connected';
    }
}

function connect() {
    sub = subscribe(channel, onMessage, {
        url: subUrl, publishUrl: pubUrl, transport: session.transport,
        lastId: 0,            /* first visit: the history the server keeps */
        onState,
        onLost: (count) => notice(`${count} message(s) were lost: they left the server's buffer before reaching you.`),
    });
    window.chat.sub = sub;
}

function enter(name) {
    els.join.hidden = true;
    els.chat.hidden = false;
    els.me.textContent = name;
    els.channel.textContent = channel;
    document.querySelector(`input[name="transport"][value="${session.transport}"]`).checked = true;
    connect();
    els.text.focus();
}

els.join.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = els.joinName.value.trim();
    if (!name) {
        return;
    }
    const t = params.get('transport');
    session = { name, transport: TRANSPORT_NAMES[t] ? t : 'auto', items: [] };
    saveSession();
    enter(name);
});

els.send.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const text = els.text.value;
    if (!text.trim() || !sub) {
        return;
    }
    els.sendButton.disabled = true;
    try {
        await sub.publish(JSON.stringify({ from: session.name, sid: sub.name, text }));
        els.text.value = '';
        showError('', els.sendError);
    } catch (e) {
        showError(`Your message was not sent: ${e.message}. It is still in the box; press Enter to try again.`,
                  els.sendError);
    } finally {
        els.sendButton.disabled = false;
        els.text.focus();
    }
});

for (const radio of document.querySelectorAll('input[name="transport"]')) {
    radio.addEventListener('change', () => {
        if (!radio.checked || !sub) {
            return;
        }
        /* A new subscription under the same name resumes from the last id
         * seen, so switching loses nothing. */
        sub.close();
        session.transport = radio.value;
        saveSession();
        connect();
    });
}

els.leave.addEventListener('click', () => {
    sub.close({ forget: true });
    sub = null;
    sessionStorage.removeItem(STATE_KEY);
    session = null;
    els.messages.replaceChildren();
    showError('');
    showError('', els.sendError);
    els.chat.hidden = true;
    els.join.hidden = false;
    els.joinName.focus();
});

/* For tests and the curious: the live subscription and the states seen. */
window.chat = { sub: null, channel, states: [] };

/* A reload keeps the name, the transport and the messages shown, and the
 * subscription resumes after the last message seen. */
session = loadSession();
if (session && session.name) {
    for (const item of session.items) {
        render(item);
    }
    enter(session.name);
} else {
    session = null;
}
