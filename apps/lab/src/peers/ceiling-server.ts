/**
 * The cost floor: bare `ws` plus Redis pub/sub pass-through, no envelope, no order, no
 * resume, no dedup. One process per instance; env REGION, PORT, HOST, GEO_REDIS_URL
 * (primary: PUBLISH), GEO_REDIS_REPLICA_URL (this region's replica: SUBSCRIBE),
 * GEO_NAMESPACE (channel prefix).
 *
 * Frames (JSON text) at `/ws?id=<client>`: `{t:'join', room, id?}` → `{t:'joined', room}`;
 * `{t:'pub', room, id, text}` → PUBLISH on `<prefix>:<room>` of
 * `{t:'msg', room, id, sender, text}`, then `{t:'ack', id}`. Each server subscribes to the
 * rooms it has members of and forwards each message's bytes as they are: one JSON encode
 * per message, at the publisher.
 */
import { WebSocketServer, type WebSocket } from 'ws';
import { boundedString, onShutdown, quitRedis, startPeer } from './peer-env.js';

const MAX_ROOM = 128;
const MAX_ID = 128;
const MAX_TEXT = 64 * 1024;
const MAX_ROOMS_PER_SOCKET = 100;
/** A member that does not read is dropped past this much unsent data (1013), not buffered without bound. */
const MAX_BUFFERED = 8 * 1024 * 1024;

const { env, name, pub, sub, http } = startPeer('ceiling-server');
const prefix = `${env.namespace}:ceiling:`;
const wss = new WebSocketServer({ server: http, path: '/ws', maxPayload: 2 * MAX_TEXT, perMessageDeflate: false });
wss.on('error', () => undefined);

/** Local members per room. */
const members = new Map<string, Set<WebSocket>>();

sub.on('messageBuffer', (channel: Buffer, message: Buffer) => {
  const room = channel.toString().slice(prefix.length);
  const local = members.get(room);
  if (!local) return;
  for (const socket of local) {
    if (socket.bufferedAmount > MAX_BUFFERED) {
      socket.close(1013, 'slow consumer');
      continue;
    }
    socket.send(message, { binary: false });
  }
});

function join(socket: WebSocket, rooms: Set<string>, room: string): void {
  rooms.add(room);
  let local = members.get(room);
  if (!local) {
    local = new Set();
    members.set(room, local);
    sub.subscribe(prefix + room).catch(() => undefined);
  }
  local.add(socket);
}

function leaveAll(socket: WebSocket, rooms: Set<string>): void {
  for (const room of rooms) {
    const local = members.get(room);
    if (!local) continue;
    local.delete(socket);
    if (local.size === 0) {
      members.delete(room);
      sub.unsubscribe(prefix + room).catch(() => undefined);
    }
  }
  rooms.clear();
}

wss.on('connection', (socket, request) => {
  const query = new URL(request.url ?? '/', 'http://peer').searchParams;
  const sender = boundedString(query.get('id'), MAX_ID) ?? 'anonymous';
  const rooms = new Set<string>();
  socket.on('error', () => undefined);
  socket.on('close', () => leaveAll(socket, rooms));
  socket.on('message', (data, isBinary) => {
    if (isBinary || !Buffer.isBuffer(data)) return;
    let frame: unknown;
    try {
      frame = JSON.parse(data.toString());
    } catch {
      return;
    }
    if (typeof frame !== 'object' || frame === null) return;
    const { t, room, id, text } = frame as Record<string, unknown>;
    const roomName = boundedString(room, MAX_ROOM);
    if (roomName === undefined) return;
    if (t === 'join') {
      if (!rooms.has(roomName) && rooms.size >= MAX_ROOMS_PER_SOCKET) return;
      join(socket, rooms, roomName);
      socket.send(JSON.stringify({ t: 'joined', room: roomName }));
      return;
    }
    if (t !== 'pub') return;
    const eventId = boundedString(id, MAX_ID);
    const body = boundedString(text, MAX_TEXT);
    if (eventId === undefined || body === undefined) return;
    const message = JSON.stringify({ t: 'msg', room: roomName, id: eventId, sender, text: body });
    pub.publish(prefix + roomName, message).then(
      () => {
        if (socket.readyState === socket.OPEN) socket.send(JSON.stringify({ t: 'ack', id: eventId }));
      },
      () => undefined, // no ack: the client retries (no guarantees here)
    );
  });
});

http.listen(env.port, env.host);

onShutdown(name, async () => {
  for (const socket of wss.clients) socket.close(1001, 'going away');
  await new Promise<void>((resolve) => wss.close(() => resolve()));
  await new Promise<void>((resolve) => {
    http.close(() => resolve());
    http.closeAllConnections();
  });
  await Promise.all([quitRedis(pub), quitRedis(sub)]);
});
