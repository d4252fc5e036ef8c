// geo-ws chat demo page. Every region serves this same file; the page opens one pane per
// region, each with its own WebSocket, so a message sent in one region can be watched
// arriving in every region in the same seq order.

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 8000;
const TYPING_SEND_EVERY_MS = 2000; // one typing frame per 2 s is enough and spares the rate limit
const TYPING_SHOW_MS = 3000;
const RTT_SAMPLES = 3;
/** geo.error codes after which resending the same frame (same event_id) may succeed. */
const RETRYABLE_CODES = new Set(['RATE_LIMITED', 'UNAVAILABLE', 'INTERNAL']);

const $ = (selector, root = document) => root.querySelector(selector);

/** Region directory from /geo/regions: [{ name, url, wsUrl }], in the server's order. */
let regions = [];
/** Open panes by region name: one per region, so `data-region` stays unique. */
const panes = new Map();

start();

async function start() {
  $('#name').value = `guest-${1 + Math.floor(Math.random() * 99)}`;
  try {
    const directory = await fetchJson('/geo/regions');
    regions = directory.regions;
    renderRegionButtons(directory.region);
  } catch (error) {
    $('#toolbar-status').textContent = `Could not load /geo/regions: ${error.message}`;
  }
}


/** A UUID v4 for event_id; crypto.randomUUID exists only on secure origins (https, localhost). */
function newEventId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function renderRegionButtons(servedBy) {
  const perRegion = regions.map((region) => button(`Open ${region.name} pane`, `open-${region.name}`, () => openPane(region)));
  const allLabel = regions.length === 3 ? 'Open all three' : `Open all ${regions.length}`;
  const all = button(allLabel, 'open-all', () => regions.forEach((region) => openPane(region)));
  $('#region-buttons').replaceChildren(...perRegion, all);
  $('#toolbar-status').textContent = `This page is served by ${servedBy}.`;
}

function openPane(region) {
  const existing = panes.get(region.name);
  if (existing) return existing.focus();
  const name = $('#name');
  const room = $('#room');
  if (!name.reportValidity() || !room.reportValidity()) return;
  const pane = new Pane(region, name.value.trim(), room.value.trim(), () => panes.delete(region.name));
  panes.set(region.name, pane);
  placePane(region, pane);
}

/** Keeps panes in directory order whatever order they were opened in. */
function placePane(region, pane) {
  const after = regions.slice(regions.indexOf(region) + 1);
  const next = after.map((other) => panes.get(other.name)).find(Boolean);
  $('#panes').insertBefore(pane.root, next?.root ?? null);
}

/** One region's view: its socket, its rooms and what they show. */
class Pane {
  constructor(region, name, roomName, onClose) {
    this.target = region; // where we (re)connect; geo.reconnect may move it to another region
    this.name = name;
    this.onClose = onClose;
    this.rooms = new Map(); // room name -> room state (createRoom)
    this.room = null; // the room shown, and the one joined on every (re)connect
    this.socket = null;
    this.welcomed = false; // geo.welcome seen on the current socket: joins may be sent
    this.region = null; // region of the current connection, from geo.welcome
    this.sender = null; // identity the server gave us, from geo.welcome
    this.attempt = 0; // consecutive failures since the last successful join, for the backoff
    this.retryTimer = 0;
    this.typingSentAt = 0;
    this.lastTypingId = null; // to recognise the echo of our own typing event
    this.typers = new Map(); // sender -> timer that hides them
    this.spokeAt = new Map(); // sender -> timestamp of their last message, to drop stale typing
    this.root = cloneTemplate('#pane-template');
    this.root.dataset.region = region.name;
    this.ui = {
      state: $('[data-testid=state]', this.root),
      rtt: $('[data-testid=rtt]', this.root),
      via: $('[data-testid=connected-region]', this.root),
      sender: $('[data-testid=sender]', this.root),
      retry: $('[data-testid=retry]', this.root),
      rooms: $('.rooms', this.root),
      messages: $('.messages', this.root),
      typing: $('[data-testid=typing]', this.root),
      input: $('[data-testid=composer]', this.root),
    };
    $('.pane-region', this.root).textContent = region.name;
    this.bindUi();
    this.showRoom(roomName);
    this.connect();
  }

  bindUi() {
    $('.close', this.root).addEventListener('click', () => this.close());
    $('.composer-form', this.root).addEventListener('submit', (event) => {
      event.preventDefault();
      this.sendMessage();
    });
    this.ui.input.addEventListener('input', () => this.sendTyping());
    const roomInput = $('.room-input', this.root);
    $('.room-form', this.root).addEventListener('submit', (event) => {
      event.preventDefault();
      this.switchRoom(roomInput.value.trim());
      roomInput.value = '';
    });
  }

  focus() {
    this.root.scrollIntoView({ block: 'nearest' });
    this.ui.input.focus();
  }

  // ---- connection -------------------------------------------------------------------

  connect() {
    this.ui.retry.textContent = '';
    const socket = new WebSocket(`${this.target.wsUrl}?name=${encodeURIComponent(this.name)}`);
    this.socket = socket;
    this.setState('connecting');
    // Events of a socket this pane has since dropped or replaced must not touch the pane.
    const current = (handler) => (event) => {
      if (this.socket === socket) handler(event);
    };
    socket.addEventListener('open', current(() => this.setState('open')));
    socket.addEventListener('message', current((event) => this.onFrame(JSON.parse(event.data))));
    socket.addEventListener('close', current(() => this.onSocketClosed()));
  }

  onSocketClosed() {
    this.forgetConnection();
    this.setState('closed');
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    const delay = backoffDelay(this.attempt++);
    this.ui.retry.textContent = `· retrying in ${(delay / 1000).toFixed(1)} s`;
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Closes the socket on purpose: its close event is ignored, so no reconnect follows. */
  dropSocket() {
    const socket = this.socket;
    this.socket = null;
    this.forgetConnection();
    socket?.close(1000);
  }

  /** Server-side membership ends with the socket; the next socket must join again. */
  forgetConnection() {
    this.welcomed = false;
    for (const room of this.rooms.values()) room.joined = false;
    this.clearTypers();
  }

  close() {
    clearTimeout(this.retryTimer);
    this.dropSocket();
    this.root.remove();
    this.onClose();
  }

  setState(state) {
    this.ui.state.textContent = state;
    this.root.dataset.state = state;
  }

  sendFrame(event, data) {
    if (this.socket?.readyState !== WebSocket.OPEN) return;
    this.socket.send(JSON.stringify({ event, data }));
  }

  async measureRtt() {
    if (!this.target.url) {
      this.ui.rtt.textContent = 'rtt n/a';
      return;
    }
    try {
      const samples = [];
      // One after another, so the samples do not queue behind each other.
      for (let i = 0; i < RTT_SAMPLES; i++) samples.push(await timeFetch(`${this.target.url}/healthz`));
      this.ui.rtt.textContent = `rtt ${Math.round(median(samples))} ms`;
    } catch {
      this.ui.rtt.textContent = 'rtt n/a';
    }
  }

  // ---- incoming frames --------------------------------------------------------------

  onFrame({ event, data }) {
    switch (event) {
      case 'geo.welcome':
        return this.onWelcome(data);
      case 'geo.joined':
        return this.onJoined(data);
      case 'geo.ack':
        return this.onAck(data);
      case 'geo.error':
        return this.onError(data);
      case 'geo.reconnect':
        return this.onDrainNotice(data);
      case 'chat.message':
        return this.onChatMessage(data);
      case 'chat.typing':
        return this.onTyping(data);
    }
  }

  onWelcome({ region, sender }) {
    this.welcomed = true;
    this.region = region;
    this.sender = sender;
    this.ui.via.textContent = region;
    this.ui.via.dataset.origin = region;
    this.ui.sender.textContent = sender;
    this.measureRtt();
    this.join(this.room);
  }

  onJoined(joined) {
    if (joined.scope) return; // a regional log: this chat publishes nothing regional
    const room = this.rooms.get(joined.room);
    if (!room) return;
    // A new epoch means the log was recreated: old seqs say nothing about the new ones.
    if (room.epoch && room.epoch !== joined.epoch) this.resetRoom(room);
    room.epoch = joined.epoch;
    room.liveAfter = joined.seq;
    room.joined = true;
    this.attempt = 0;
    if (!joined.recovered) this.notice(room, 'history gap: some messages could not be recovered');
    this.flushOutbox(room);
  }

  onAck({ event_id: eventId, seq }) {
    if (seq === null) return; // an ephemeral event (typing): nothing was stored
    const found = this.findOutboxEntry(eventId);
    if (found) this.markAcked(found.room, found.entry, seq);
  }

  onError(error) {
    const room = this.rooms.get(error.room) ?? this.room;
    this.notice(room, `${error.code}: ${error.message}`, 'error');
    const found = error.event_id && this.findOutboxEntry(error.event_id);
    if (found) this.onSendFailed(found.room, found.entry, error.code);
    // No event_id: the join failed or the room was evicted; the server asks us to join again.
    else if (!error.event_id && RETRYABLE_CODES.has(error.code) && room === this.room) this.rejoinLater(room);
  }

  onDrainNotice({ region, url }) {
    this.notice(this.room, `${this.region} is draining; moving to ${region}`);
    this.target = { name: region, wsUrl: url, url: regions.find((entry) => entry.name === region)?.url };
    this.dropSocket();
    this.connect();
  }

  onChatMessage(envelope) {
    // Measured before any other work, so the figure is the delivery time only.
    const latency = Date.now() - Date.parse(envelope.timestamp);
    const room = this.rooms.get(envelope.room_id);
    if (!room || envelope.seq <= room.lastSeq) return; // already shown (replay overlap)
    room.lastSeq = envelope.seq;
    const row = messageRow(envelope, envelope.seq > room.liveAfter ? `${latency} ms` : 'history');
    this.takeOutboxRow(room, envelope.event_id);
    this.insert(room, row, envelope.seq);
    this.spokeAt.set(envelope.sender, Date.parse(envelope.timestamp));
    if (room === this.room) this.hideTyper(envelope.sender);
  }

  onTyping(envelope) {
    if (envelope.room_id !== this.room.name || envelope.event_id === this.lastTypingId) return;
    // Typing travels apart from the ordered log, so it may land after the message it preceded.
    if (Date.parse(envelope.timestamp) <= (this.spokeAt.get(envelope.sender) ?? 0)) return;
    this.showTyper(envelope.sender);
  }

  // ---- rooms ------------------------------------------------------------------------

  join(room) {
    // since = last seq we have (0 the first time, which replays the retained history).
    const position = { since: room.lastSeq, ...(room.epoch ? { epoch: room.epoch } : {}) };
    this.sendFrame('geo.join', { room: room.name, ...position });
  }

  rejoinLater(room) {
    room.joined = false;
    setTimeout(() => {
      if (this.welcomed && this.room === room && !room.joined) this.join(room);
    }, backoffDelay(this.attempt++));
  }

  switchRoom(name) {
    if (name === this.room.name) return;
    if (this.welcomed) this.sendFrame('geo.leave', { room: this.room.name });
    this.room.joined = false;
    this.showRoom(name);
    if (this.welcomed) this.join(this.room);
  }

  /** Shows a room's list; each room keeps its own list so switching back loses nothing. */
  showRoom(name) {
    if (!this.rooms.has(name)) this.rooms.set(name, createRoom(name));
    this.room = this.rooms.get(name);
    this.ui.messages.replaceChildren(this.room.list);
    this.ui.messages.scrollTop = this.ui.messages.scrollHeight;
    this.clearTypers();
    this.renderRoomTabs();
  }

  renderRoomTabs() {
    const tabs = [...this.rooms.keys()].map((name) => {
      const tab = button(name, `room-${name}`, () => this.switchRoom(name));
      if (name === this.room.name) tab.setAttribute('aria-current', 'true');
      return tab;
    });
    this.ui.rooms.replaceChildren(...tabs);
  }

  resetRoom(room) {
    room.lastSeq = 0;
    room.list.replaceChildren(...[...room.outbox.values()].map((entry) => entry.row));
    this.notice(room, 'the room log was reset (new epoch); showing it from the start');
  }

  /** Inserts a row by seq, keeping the user's scroll unless they were at the bottom. */
  insert(room, row, key, { scroll = false } = {}) {
    const box = this.ui.messages;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 48;
    insertSorted(room.list, row, key);
    if (room === this.room && (atBottom || scroll)) box.scrollTop = box.scrollHeight;
  }

  /** Notices sit right after the last event seen, i.e. where the gap or error happened. */
  notice(room, text, kind = 'notice') {
    const row = document.createElement('li');
    row.className = kind;
    row.textContent = text;
    this.insert(room, row, room.lastSeq + 0.5);
  }

  // ---- outgoing messages ------------------------------------------------------------

  sendMessage() {
    const text = this.ui.input.value.trim();
    if (!text) return;
    const data = { event_id: newEventId(), room_id: this.room.name, data: { text } };
    const draft = { seq: null, sender: this.sender ?? this.name, region: this.region, timestamp: new Date().toISOString(), data: data.data };
    const row = messageRow(draft, 'pending');
    row.classList.add('pending');
    this.room.outbox.set(data.event_id, { data, row, status: 'pending', tries: 0 });
    this.insert(this.room, row, Infinity, { scroll: true });
    // Not joined yet (connecting, or between sockets): flushOutbox sends it on geo.joined.
    if (this.room.joined) this.sendFrame('chat.message', data);
    this.ui.input.value = '';
  }

  sendTyping() {
    const now = Date.now();
    if (!this.room.joined || !this.ui.input.value || now - this.typingSentAt < TYPING_SEND_EVERY_MS) return;
    this.typingSentAt = now;
    this.lastTypingId = newEventId();
    this.sendFrame('chat.typing', { event_id: this.lastTypingId, room_id: this.room.name, data: {} });
  }

  /** (Re)sends what the server has not acknowledged; the same event_id makes a resend harmless. */
  flushOutbox(room) {
    for (const entry of room.outbox.values()) {
      if (entry.status === 'pending') this.sendFrame('chat.message', entry.data);
    }
  }

  findOutboxEntry(eventId) {
    for (const room of this.rooms.values()) {
      const entry = room.outbox.get(eventId);
      if (entry) return { room, entry };
    }
    return null;
  }

  /** The ack may beat the event itself: show the seq now, the stream's copy replaces the row. */
  markAcked(room, entry, seq) {
    entry.status = 'acked';
    entry.row.classList.replace('pending', 'acked');
    entry.row.dataset.seq = seq;
    $('.seq', entry.row).textContent = `#${seq}`;
    $('.latency', entry.row).textContent = 'acked';
    this.insert(room, entry.row, seq);
  }

  onSendFailed(room, entry, code) {
    if (RETRYABLE_CODES.has(code)) {
      setTimeout(() => this.resend(room, entry), backoffDelay(entry.tries++));
      return;
    }
    entry.status = 'failed';
    entry.row.classList.replace('pending', 'failed');
    $('.latency', entry.row).textContent = 'failed';
  }

  resend(room, entry) {
    const stillWaiting = room.outbox.get(entry.data.event_id) === entry && entry.status === 'pending';
    if (stillWaiting && room.joined) this.sendFrame('chat.message', entry.data);
  }

  /** Our own message came back through the room stream: its pending row gives way to it. */
  takeOutboxRow(room, eventId) {
    const entry = room.outbox.get(eventId);
    if (!entry) return;
    entry.row.remove();
    room.outbox.delete(eventId);
  }

  // ---- typing indicator -------------------------------------------------------------

  showTyper(sender) {
    clearTimeout(this.typers.get(sender));
    this.typers.set(sender, setTimeout(() => this.hideTyper(sender), TYPING_SHOW_MS));
    this.renderTyping();
  }

  hideTyper(sender) {
    clearTimeout(this.typers.get(sender));
    this.typers.delete(sender);
    this.renderTyping();
  }

  clearTypers() {
    for (const timer of this.typers.values()) clearTimeout(timer);
    this.typers.clear();
    this.renderTyping();
  }

  renderTyping() {
    const names = [...this.typers.keys()];
    const verb = names.length === 1 ? 'is' : 'are';
    this.ui.typing.textContent = names.length ? `${names.join(', ')} ${verb} typing…` : '';
  }
}

/** Per-room state of one pane. */
function createRoom(name) {
  const list = document.createElement('ol');
  list.className = 'messages-list';
  return {
    name,
    list,
    lastSeq: 0, // highest seq shown; sent as `since` so a rejoin replays only what we missed
    epoch: undefined, // the log epoch lastSeq belongs to
    liveAfter: 0, // geo.joined's seq: events up to it are replayed history, later ones live
    joined: false,
    outbox: new Map(), // event_id -> { data, row, status, tries } until the stream returns it
  };
}

function messageRow(envelope, latencyText) {
  const row = cloneTemplate('#message-template');
  if (envelope.seq !== null) row.dataset.seq = envelope.seq;
  $('.seq', row).textContent = envelope.seq === null ? '#…' : `#${envelope.seq}`;
  $('.sender', row).textContent = envelope.sender;
  const origin = $('.origin', row);
  origin.textContent = envelope.region ?? '…';
  if (envelope.region) origin.dataset.origin = envelope.region;
  $('.time', row).textContent = formatTime(new Date(envelope.timestamp));
  $('.latency', row).textContent = latencyText;
  $('.text', row).textContent = envelope.data?.text ?? '';
  return row;
}

/** Inserts `row` after the last row whose key is ≤ `key` (scanning from the end: new rows are usually last). */
function insertSorted(list, row, key) {
  row.dataset.key = key;
  let before = null;
  for (let node = list.lastElementChild; node && Number(node.dataset.key) > key; node = node.previousElementSibling) before = node;
  list.insertBefore(row, before);
}

function button(label, testId, onClick) {
  const element = document.createElement('button');
  element.type = 'button';
  element.textContent = label;
  element.dataset.testid = testId;
  element.addEventListener('click', onClick);
  return element;
}

function cloneTemplate(selector) {
  return $(selector).content.firstElementChild.cloneNode(true);
}

/** Full jitter: a random wait up to the doubled cap, so many clients do not retry in step. */
function backoffDelay(attempt) {
  return Math.random() * Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);
}

async function timeFetch(url) {
  const started = performance.now();
  const response = await fetch(url, { cache: 'no-store' });
  await response.text();
  return performance.now() - started;
}

async function fetchJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function formatTime(date) {
  return [date.getHours(), date.getMinutes(), date.getSeconds()].map((part) => String(part).padStart(2, '0')).join(':');
}
