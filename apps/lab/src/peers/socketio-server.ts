/**
 * The Socket.IO peer: Socket.IO 4 with `@socket.io/redis-adapter` and connection-state
 * recovery, the setup Nest's docs recommend for scaling gateways. One process per
 * instance; env REGION, PORT, HOST, GEO_REDIS_URL (primary: publishes), GEO_REDIS_REPLICA_URL
 * (this region's replica: subscriptions), GEO_NAMESPACE (adapter key prefix).
 *
 * Client → server: `join` (room, ack) and `publish` ({ room, id, text }, ack `{ ok: true }`);
 * server → clients: `message` ({ id, room, sender, text }) to the room.
 */
import { createAdapter } from '@socket.io/redis-adapter';
import { Server, type Socket } from 'socket.io';
import { boundedString, onShutdown, quitRedis, startPeer } from './peer-env.js';

const MAX_ROOM = 128;
const MAX_ID = 128;
const MAX_TEXT = 64 * 1024;
const MAX_ROOMS_PER_SOCKET = 100;

const { env, name, pub, sub, http } = startPeer('socketio-server');

const io = new Server(http, {
  transports: ['websocket'],
  maxHttpBufferSize: 2 * MAX_TEXT,
  adapter: createAdapter(pub, sub, { key: `${env.namespace}:sio` }),
  connectionStateRecovery: { maxDisconnectionDuration: 2 * 60_000, skipMiddlewares: true },
});

io.engine.on('connection_error', () => undefined);

io.on('connection', (socket: Socket) => {
  const auth = socket.handshake.auth as Record<string, unknown>;
  const sender = boundedString(auth.id, MAX_ID) ?? socket.id;
  socket.on('error', () => undefined);
  socket.on('join', (room: unknown, ack: unknown) => {
    const name = boundedString(room, MAX_ROOM);
    if (name === undefined || typeof ack !== 'function') return;
    if (!socket.rooms.has(name) && socket.rooms.size > MAX_ROOMS_PER_SOCKET) return (ack as (answer: unknown) => void)({ ok: false });
    void socket.join(name);
    (ack as (answer: unknown) => void)({ ok: true });
  });
  socket.on('publish', (frame: unknown, ack: unknown) => {
    if (typeof frame !== 'object' || frame === null || typeof ack !== 'function') return;
    const { room, id, text } = frame as Record<string, unknown>;
    const roomName = boundedString(room, MAX_ROOM);
    const eventId = boundedString(id, MAX_ID);
    const body = boundedString(text, MAX_TEXT);
    if (roomName === undefined || eventId === undefined || body === undefined) return;
    io.to(roomName).emit('message', { id: eventId, room: roomName, sender, text: body });
    (ack as (answer: unknown) => void)({ ok: true });
  });
});

http.listen(env.port, env.host);

onShutdown(name, async () => {
  // io.close() disconnects every socket (saving recovery state) and closes the http server.
  await new Promise<void>((resolve) => void io.close(() => resolve()));
  await Promise.all([quitRedis(pub), quitRedis(sub)]);
});
