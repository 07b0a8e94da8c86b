// The Socket.IO 4 peer: Careline's chat job written the usual Node way, to
// measure Careline against (load-tests/README.md). One process per
// instance; several share PostgreSQL and Redis (@socket.io/redis-adapter).
//
//   PORT=3001 DATABASE_URL=postgres://… REDIS_URL=redis://… node server.js
//
// Without REDIS_URL the in-memory adapter (one instance). WebSocket
// transport only. Events (each answered through its ack with Careline-shaped
// frames, so the load generator reads both servers alike):
//   start                          → {type: conversation, id, status: bot}; joins its room
//   join {conversation_id}         → joins the room; the room gets {type: conversation, status: live, assignee}
//   send {conversation_id, client_msg_id, body}
//                                  → persisted (send.sql), THEN broadcast to the room as
//                                    {type: message, …}, then acked {type: ack, seq, id}
//   resume {conversation_id, after_seq}
//                                  → [message…, {type: resumed, last_seq}]; (re)joins the room
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const Redis = require('ioredis');
const { Pool } = require('pg');

const port = Number(process.env.PORT || 3000);
const SEND = fs.readFileSync(path.join(__dirname, 'send.sql'), 'utf8')
  .split('\n').filter((l) => !l.startsWith('--')).join('\n');

// As many connections as a Careline instance's pool (database_max_connections).
const pool = new Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.PG_POOL || 10),
});
pool.on('error', (e) => console.error('pg:', e.message));

const httpServer = http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.end('ok');
  } else {
    res.writeHead(404);
    res.end();
  }
});
const io = new Server(httpServer, {
  transports: ['websocket'],
  serveClient: false,
  maxHttpBufferSize: 64 * 1024,
});
if (process.env.REDIS_URL) {
  const pub = new Redis(process.env.REDIS_URL);
  const sub = pub.duplicate();
  for (const c of [pub, sub]) c.on('error', (e) => console.error('redis:', e.message));
  io.adapter(createAdapter(pub, sub));
}

const room = (id) => `conversation:${id}`;

function message(row, conversationId, sender, body, clientMsgId) {
  return {
    type: 'message',
    conversation_id: conversationId,
    seq: Number(row.seq),
    id: String(row.id),
    sender,
    body,
    private: false,
    client_msg_id: clientMsgId,
    at: row.created_at.toISOString(),
  };
}

// Runs a handler; a failure is answered with an error frame, never a crash.
function handle(socket, event, fn) {
  socket.on(event, async (arg, ack) => {
    const reply = typeof ack === 'function' ? ack : () => {};
    try {
      reply(await fn(arg || {}));
    } catch (e) {
      reply({ type: 'error', code: 'internal', message: String(e.message || e) });
    }
  });
}

io.on('connection', (socket) => {
  const auth = socket.handshake.auth || {};
  const kind = auth.role === 'agent' ? 'agent' : 'customer';
  const me = kind === 'agent' ? String(auth.id || socket.id) : socket.id;
  const sender = { kind, id: me };

  handle(socket, 'start', async () => {
    const { rows } = await pool.query('INSERT INTO peer_conversations DEFAULT VALUES RETURNING id');
    const id = String(rows[0].id);
    socket.join(room(id));
    return { type: 'conversation', id, status: 'bot', last_seq: 0 };
  });

  handle(socket, 'join', async (arg) => {
    const id = String(arg.conversation_id);
    socket.join(room(id));
    io.to(room(id)).emit('conversation', {
      type: 'conversation', id, status: 'live', assignee: { id: me },
    });
    return { type: 'joined', conversation_id: id };
  });

  handle(socket, 'send', async (arg) => {
    const id = String(arg.conversation_id);
    const clientMsgId = String(arg.client_msg_id);
    const body = String(arg.body);
    const { rows } = await pool.query(SEND, [id, clientMsgId, kind, body]);
    if (rows.length === 0) return { type: 'error', code: 'not_found', message: 'conversation' };
    const row = rows[0];
    // Committed: tell the room (every instance, through Redis), then the sender.
    if (row.fresh) io.to(room(id)).emit('message', message(row, id, sender, body, clientMsgId));
    return {
      type: 'ack', client_msg_id: clientMsgId, conversation_id: id,
      seq: Number(row.seq), id: String(row.id),
    };
  });

  handle(socket, 'resume', async (arg) => {
    const id = String(arg.conversation_id);
    const after = Number(arg.after_seq) || 0;
    socket.join(room(id));
    const { rows } = await pool.query(
      `SELECT id, seq, sender_kind, client_msg_id, body, created_at FROM peer_messages
       WHERE conversation_id = $1 AND seq > $2 ORDER BY seq`, [id, after]);
    const frames = rows.map((r) => message(r, id, { kind: r.sender_kind }, r.body, r.client_msg_id));
    const last = rows.length ? Number(rows[rows.length - 1].seq) : after;
    frames.push({ type: 'resumed', conversation_id: id, last_seq: last });
    return frames;
  });
});

httpServer.listen(port, '127.0.0.1', () => {
  console.log(`peer listening on 127.0.0.1:${port}${process.env.REDIS_URL ? ' (redis adapter)' : ''}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    io.close();
    pool.end().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
