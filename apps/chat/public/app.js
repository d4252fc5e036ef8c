// geo-ws chat demo page. Every region serves this same file; the page opens one pane per
// region, each with its own connection, so a message sent in one region can be watched
// arriving in every region in the same seq order.
//
// The networking is the client SDK's (served by every region at /sdk/): reconnect with
// backoff, failover to the next region, resume by seq without gap or duplicate, and
// publishes kept until acked. The page only renders what the SDK reports.
import { GeoClient, newEventId } from '/sdk/index.js';

const BACKOFF = { baseMs: 250, maxMs: 4000 }; // short waits: a demo region restarts in a second or two
const HEARTBEAT_MS = 5000; // the SDK's geo.ping: gives the RTT figure and spots a dead connection
const RTT_REFRESH_MS = 2000;
const TYPING_SEND_EVERY_MS = 2000; // one typing frame per 2 s is enough and spares the rate limit
const TYPING_SHOW_MS = 3000;

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

/** DEMO ONLY: a token for `name` from the sample app's demo authority. */
async function demoToken(name) {
  const response = await fetch(`${location.origin}/demo/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  if (!response.ok) throw new Error(`demo token refused (${response.status})`);
  return (await response.json()).token;
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
  const pane = new Pane(region, name.value.trim(), room.value.trim(), $('#codec').value, () => panes.delete(region.name));
  panes.set(region.name, pane);
  placePane(region, pane);
}

/** Keeps panes in directory order whatever order they were opened in. */
function placePane(region, pane) {
  const after = regions.slice(regions.indexOf(region) + 1);
  const next = after.map((other) => panes.get(other.name)).find(Boolean);
  $('#panes').insertBefore(pane.root, next?.root ?? null);
}

/** One region's view: its GeoClient, its rooms and what they show. */
class Pane {
  constructor(region, name, roomName, codec, onClose) {
    this.home = region.name; // the region this pane prefers; the SDK may fail over elsewhere
    this.regionUrl = region.url; // asked where rooms live (GET /geo/rooms/:room)
    this.name = name;
    this.codec = codec; // 'json' or 'msgpack': the frames of this pane's connection
    this.onClose = onClose;
    this.client = null; // set once the first connection is open
    this.closed = false;
    this.rooms = new Map(); // room name -> room state (createRoom)
    this.room = null; // the room shown
    this.connectedAt = 0; // when the current connection opened: older events arriving since are replays
    this.staleRtt = undefined; // client.rttMs of the previous connection, not shown for this one
    this.rttTimer = 0;
    this.typingSentAt = 0;
    this.lastTypingId = null; // to recognise the echo of our own typing event
    this.typers = new Map(); // sender -> timer that hides them
    this.spokeAt = new Map(); // sender -> timestamp of their last message, to drop stale typing
    this.root = cloneTemplate('#pane-template');
    this.root.dataset.region = region.name;
    this.ui = {
      state: $('[data-testid=state]', this.root),
      rtt: $('[data-testid=rtt]', this.root),
      via: $('[data-testid=via]', this.root),
      away: $('[data-testid=away]', this.root),
      roomHome: $('[data-testid=home]', this.root),
      sender: $('[data-testid=sender]', this.root),
      retry: $('[data-testid=retry]', this.root),
      rooms: $('.rooms', this.root),
      messages: $('.messages', this.root),
      typing: $('[data-testid=typing]', this.root),
      input: $('[data-testid=composer]', this.root),
    };
    $('.pane-region', this.root).textContent = region.name;
    $('[data-testid=codec]', this.root).textContent = codec === 'msgpack' ? 'MessagePack' : 'JSON';
    this.bindUi();
    this.showRoom(roomName);
    this.ready = this.connect();
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
      this.showRoom(roomInput.value.trim());
      roomInput.value = '';
    });
  }

  focus() {
    this.root.scrollIntoView({ block: 'nearest' });
    this.ui.input.focus();
  }

  // ---- connection -------------------------------------------------------------------

  /** Resolves with the client once connected, or with null if no region took us. */
  async connect() {
    this.setState('connecting');
    let client;
    try {
      // The MessagePack codec is loaded only by panes that use it (it brings msgpackr along).
      const codec = this.codec === 'msgpack' ? (await import('/sdk/msgpack.js')).msgpackCodec : undefined;
      client = await GeoClient.connect({
        codec,
        directoryUrl: location.origin,
        // This pane's region first; while it is down the SDK moves to the next one.
        regionOrder: [this.home, ...regions.map((region) => region.name).filter((name) => name !== this.home)],
        // The demo token authority (every region runs one; DEMO ONLY). The SDK calls this
        // for every connection and before the token expires, and refreshes in-band.
        token: () => demoToken(this.name),
        backoff: BACKOFF,
        heartbeatMs: HEARTBEAT_MS,
      });
    } catch (error) {
      this.setState('closed');
      this.showError(this.room, error);
      return null;
    }
    if (this.closed) {
      client.close();
      return null;
    }
    this.client = client;
    this.listenTo(client);
    this.setState(client.state);
    this.onConnected();
    this.rttTimer = setInterval(() => this.renderRtt(), RTT_REFRESH_MS);
    for (const room of this.rooms.values()) this.join(room);
    return client;
  }

  listenTo(client) {
    client.on('state', (state) => this.setState(state));
    client.on('region', () => this.onConnected());
    client.on('reconnect', ({ region, delayMs }) => this.showRetry(region, delayMs));
    client.on('gap', (gap) => this.onGap(gap));
    client.on('error', (error) => this.showError(this.rooms.get(error.room) ?? this.room, error));
  }

  /** A connection opened, first or after a reconnect or a move to another region. */
  onConnected() {
    const { region, sender } = this.client;
    this.connectedAt = Date.now();
    this.staleRtt = this.client.rttMs;
    this.ui.via.textContent = region;
    this.ui.via.dataset.origin = region;
    this.ui.away.textContent = region === this.home ? '' : `· failed over from ${this.home}`;
    this.ui.sender.textContent = sender;
    this.ui.retry.textContent = '';
    this.clearTypers();
    this.renderRtt();
  }

  showRetry(region, delayMs) {
    const when = delayMs > 0 ? `in ${(delayMs / 1000).toFixed(1)} s` : 'now';
    this.ui.retry.textContent = `· retrying ${region} ${when}`;
  }

  /** The SDK's geo.ping round trip; until this connection has answered one, the probe taken when ranking regions. */
  renderRtt() {
    const client = this.client;
    if (client.state !== 'open') {
      this.ui.rtt.textContent = 'rtt –';
      return;
    }
    const pinged = client.rttMs !== this.staleRtt ? client.rttMs : undefined;
    const rtt = pinged ?? client.rankedRegions.find((region) => region.name === client.region)?.rttMs;
    this.ui.rtt.textContent = Number.isFinite(rtt) ? `rtt ${Math.round(rtt)} ms` : 'rtt n/a';
  }

  close() {
    this.closed = true;
    clearInterval(this.rttTimer);
    this.client?.close();
    this.clearTypers();
    this.root.remove();
    this.onClose();
  }

  setState(state) {
    this.ui.state.textContent = state;
    this.root.dataset.state = state;
    if (this.client) this.renderRtt();
  }

  // ---- rooms ------------------------------------------------------------------------

  /**
   * Joins with since: 0 so the retained history is shown; the SDK resumes from the last
   * seq after that. Rooms stay joined while another tab is shown, so every tab keeps
   * filling and switching back needs nothing.
   */
  join(room) {
    const handler = (envelope) => this.onRoomEvent(room, envelope);
    room.join = this.client.join(room.name, handler, { since: 0 }).then(
      (joined) => {
        room.liveAfter = joined.seq;
        room.epoch = joined.epoch;
      },
      (error) => {
        room.join = null; // showing the tab again retries
        this.showError(room, error);
      },
    );
  }

  onGap({ room: name, epoch }) {
    const room = this.rooms.get(name);
    if (!room) return;
    // A new epoch means the log was recreated: its seqs start over, so the old rows go.
    if (room.epoch && room.epoch !== epoch) this.resetRoom(room);
    room.epoch = epoch;
    this.notice(room, 'history gap: some messages could not be recovered');
  }

  resetRoom(room) {
    room.lastSeq = 0;
    room.liveAfter = 0;
    room.list.replaceChildren(...room.pending.values());
    this.notice(room, 'the room log was reset (new epoch); showing it from the start');
  }

  /** Shows a room's list, creating and joining it the first time. */
  showRoom(name) {
    if (!this.rooms.has(name)) this.rooms.set(name, createRoom(name));
    this.room = this.rooms.get(name);
    if (this.client && !this.room.join) this.join(this.room);
    this.ui.messages.replaceChildren(this.room.list);
    this.ui.messages.scrollTop = this.ui.messages.scrollHeight;
    this.clearTypers();
    this.renderRoomTabs();
    void this.showHome(this.room);
  }

  /**
   * The shown room's home region, asked until the room has one (its first message places
   * it). A transport that keeps every room's log in one place says so (`placement: fixed`).
   */
  async showHome(room) {
    if (!room.home && room.placement !== 'fixed') {
      try {
        const answer = await fetchJson(`${this.regionUrl}/geo/rooms/${encodeURIComponent(room.name)}`);
        room.home = answer.home;
        room.placement = answer.placement;
      } catch {
        // Endpoint off, or the region is down: show what is known.
      }
    }
    if (room !== this.room) return;
    const unknown = room.placement === 'fixed' ? 'one place for every room' : 'no region yet';
    this.ui.roomHome.textContent = room.home ?? unknown;
    this.ui.roomHome.dataset.origin = room.home ?? '';
  }

  renderRoomTabs() {
    const tabs = [...this.rooms.keys()].map((name) => {
      const tab = button(name, `room-${name}`, () => this.showRoom(name));
      if (name === this.room.name) tab.setAttribute('aria-current', 'true');
      return tab;
    });
    this.ui.rooms.replaceChildren(...tabs);
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

  /** A refused publish or join (GeoClientError) or a geo.error frame: both carry a code. */
  showError(room, error) {
    this.notice(room, error.code ? `${error.code}: ${error.message}` : error.message, 'error');
  }

  // ---- incoming events (in seq order, each once: the SDK sees to that) ----------------

  onRoomEvent(room, envelope) {
    if (envelope.type === 'chat.message') this.onChatMessage(room, envelope);
    else if (envelope.type === 'chat.typing') this.onTyping(room, envelope);
  }

  onChatMessage(room, envelope) {
    // Measured before any other work, so the figure is the delivery time only.
    const latency = Date.now() - Date.parse(envelope.timestamp);
    const row = messageRow(envelope, this.isReplayed(room, envelope) ? 'history' : `${latency} ms`);
    room.lastSeq = envelope.seq;
    this.dropPendingRow(room, envelope.event_id);
    this.insert(room, row, envelope.seq);
    if (!room.home) void this.showHome(room);
    this.spokeAt.set(envelope.sender, Date.parse(envelope.timestamp));
    if (room === this.room) this.hideTyper(envelope.sender);
  }

  /**
   * Replayed rather than live: at or below the position of the first join (the history
   * asked for), or stamped before the current connection opened (missed while away and
   * resent by the SDK's resume).
   */
  isReplayed(room, envelope) {
    return envelope.seq <= room.liveAfter || Date.parse(envelope.timestamp) < this.connectedAt;
  }

  onTyping(room, envelope) {
    if (room !== this.room || envelope.event_id === this.lastTypingId) return;
    // Typing travels apart from the ordered log, so it may land after the message it preceded.
    if (Date.parse(envelope.timestamp) <= (this.spokeAt.get(envelope.sender) ?? 0)) return;
    this.showTyper(envelope.sender);
  }

  // ---- outgoing messages ------------------------------------------------------------

  sendMessage() {
    const text = this.ui.input.value.trim();
    if (!text) return;
    const room = this.room;
    const eventId = newEventId();
    const row = this.pendingRow(text);
    room.pending.set(eventId, row);
    this.insert(room, row, Infinity, { scroll: true });
    this.ui.input.value = '';
    // Receivers hide our indicator when the message lands: the next keystroke announces again.
    this.typingSentAt = 0;
    this.publish(room, eventId, text);
  }

  pendingRow(text) {
    const draft = {
      seq: null,
      sender: this.client?.sender ?? this.name,
      region: this.client?.region ?? null,
      timestamp: new Date().toISOString(),
      data: { text },
    };
    const row = messageRow(draft, 'pending');
    row.classList.add('pending');
    return row;
  }

  /** The SDK keeps the message until a region stored it, resending it with the same event_id after reconnects. */
  async publish(room, eventId, text) {
    try {
      const client = await this.ready;
      if (!client) throw new Error('not connected');
      await room.join; // the SDK refuses publishes to a room it was not asked to join
      const ack = await client.publish(room.name, 'chat.message', { text }, eventId);
      this.markAcked(room, eventId, ack.seq);
    } catch (error) {
      this.markFailed(room, eventId, error);
    }
  }

  /** The ack may beat the event itself: show the seq now; the event's own row replaces this one. */
  markAcked(room, eventId, seq) {
    const row = room.pending.get(eventId);
    if (!row) return; // the event came first and already replaced the row
    row.classList.replace('pending', 'acked');
    row.dataset.seq = seq;
    $('.seq', row).textContent = `#${seq}`;
    $('.latency', row).textContent = 'acked';
    this.insert(room, row, seq);
  }

  markFailed(room, eventId, error) {
    const row = room.pending.get(eventId);
    room.pending.delete(eventId);
    if (row) {
      row.classList.replace('pending', 'failed');
      $('.latency', row).textContent = 'failed';
    }
    this.showError(room, error);
  }

  /** Our own message came back through the room stream: its pending row gives way to it. */
  dropPendingRow(room, eventId) {
    room.pending.get(eventId)?.remove();
    room.pending.delete(eventId);
  }

  sendTyping() {
    const now = Date.now();
    // Only while connected: the SDK would otherwise resend a stale indicator after the reconnect.
    if (this.client?.state !== 'open' || !this.room.join || !this.ui.input.value || now - this.typingSentAt < TYPING_SEND_EVERY_MS) return;
    this.typingSentAt = now;
    this.lastTypingId = newEventId();
    // Ephemeral (acked with seq null, at most once): a lost indicator is not worth an error line.
    this.client.publish(this.room.name, 'chat.typing', {}, this.lastTypingId).catch(() => undefined);
  }

  // ---- typing indicator -------------------------------------------------------------

  showTyper(sender) {
    clearTimeout(this.typers.get(sender));
    this.typers.set(
      sender,
      setTimeout(() => this.hideTyper(sender), TYPING_SHOW_MS),
    );
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
    join: null, // the SDK join in progress or done; null until asked (or after it failed)
    epoch: undefined, // the log epoch the rows belong to
    home: null, // the region holding the room's log, once it has one
    placement: undefined, // 'per-room' or 'fixed', from GET /geo/rooms/:room
    liveAfter: Infinity, // geo.joined's seq of the first join: events up to it are history
    lastSeq: 0, // seq of the last event shown, where notices go
    pending: new Map(), // event_id -> row of our message, until its event comes back
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

async function fetchJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

function formatTime(date) {
  return [date.getHours(), date.getMinutes(), date.getSeconds()].map((part) => String(part).padStart(2, '0')).join(':');
}
