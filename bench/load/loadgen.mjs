// The one load generator of the signaling benchmarks (bench/signaling.py).
//
//   node bench/load/loadgen.mjs '{"dialect": ..., "url": ..., "workload": ..., ...}'
//
// Dialects (how a peer joins a room of a server and relays to another peer):
//   v1   rtcroom's protocol v1 on /ws: `join`, then `signal` {to, data}
//   sio  the tutorials' Socket.IO contract: `join` {username, room}, the
//        first peer hears `ready`, then `data` {username, room, data}
//   raw  the bare relay (bench/servers/ws_relay.mjs): the room in the URL,
//        frames go unchanged to the other members
// Every dialect relays the same payload: an ICE candidate as a browser sends
// it, with a timestamp.
//
// Workloads (parameters in the JSON argument):
//   closed  {pairs, seconds, warmup}: rooms of two, one message in flight per
//           pair, bounced back and forth; messages relayed, round trips.
//   open    {pairs, rate, seconds, warmup}: one-way messages at a fixed
//           offered rate (msg/s over all pairs); one-way latencies.
//   idle    {connections, concurrency}: join that many peers in rooms of
//           two and hold them; prints a line when all are in, then waits for
//           its stdin to close before it lets them go.
//   churn   {rooms, seconds}: each room has a resident; a visitor joins it
//           and leaves again, over and over; cycles and join times.
//
// Prints JSON lines; the last one is the result. Its `cpu` is the load
// generator's own CPU time over the measured window divided by its length
// (1.0 = one core busy: then the generator, not the server, is the limit).
import WebSocket from "ws";
import { io } from "socket.io-client";

const config = JSON.parse(process.argv[2]);
const wsBase = config.url.replace(/^http/, "ws");
const CANDIDATE = {
  candidate: "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0",
  sdpMid: "0",
  sdpMLineIndex: 0,
};
const payload = (t) => ({ candidate: CANDIDATE, t });
// `{"type":"signal"`: protocol v1's relayed frames and the raw relay's.
const SIGNAL = Buffer.from('{"type":"signal"');
const isSignal = (frame) => frame.length > SIGNAL.length && SIGNAL.equals(frame.subarray(0, SIGNAL.length));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// A peer: {id, others, prepare(toId, data) -> frame, send(frame), decode(frame) -> data,
// dataCallback(frame), peerCallback(id), close()}.
// join() resolves when the server has taken the peer into the room.
// A peer on a plain WebSocket (protocol v1 and the raw relay send the same frames).
function wsPeer(ws, id, others) {
  return {
    id,
    others,
    dataCallback: null,
    peerCallback: null,
    prepare: (to, data) => JSON.stringify({ type: "signal", to, data }),
    send: (prepared) => ws.send(prepared),
    decode: (frame) => JSON.parse(frame).data,
    close() {
      ws.close(1000);
      return new Promise((done) => (ws.readyState === WebSocket.CLOSED ? done() : ws.once("close", done)));
    },
  };
}

const dialects = {
  v1: {
    join(room, name) {
      return new Promise((resolve, reject) => {
        const ws = new WebSocket(`${wsBase}/ws`, { perMessageDeflate: false });
        const peer = wsPeer(ws, null, []);
        ws.on("open", () => ws.send(JSON.stringify({ type: "join", room, name })));
        ws.on("message", (frame) => {
          // A relayed frame goes to the workload undecoded: it decodes only what it reads.
          if (isSignal(frame)) return peer.dataCallback?.(frame);
          const message = JSON.parse(frame);
          if (message.type === "joined") {
            peer.id = message.id;
            peer.others = message.peers.map((p) => p.id);
            resolve(peer);
          } else if (message.type === "peer-joined") {
            peer.others.push(message.peer.id);
            peer.peerCallback?.(message.peer.id);
          } else if (message.type === "error") reject(new Error(`${message.code}: ${message.message}`));
        });
        ws.on("error", reject);
        ws.on("close", (code) => reject(new Error(`closed (${code}) before joining`)));
      });
    },
  },
  raw: {
    join(room) {
      return new Promise((resolve, reject) => {
        const ws = new WebSocket(`${wsBase}/?room=${room}`, { perMessageDeflate: false });
        const peer = wsPeer(ws, "peer", ["peer"]);
        ws.on("open", () => resolve(peer));
        ws.on("message", (frame) => peer.dataCallback?.(frame));
        ws.on("error", reject);
      });
    },
  },
  sio: {
    join(room, name) {
      return new Promise((resolve, reject) => {
        const socket = io(config.url, { transports: ["websocket"], reconnection: false, forceNew: true });
        const peer = {
          id: name,
          others: [],
          dataCallback: null,
          peerCallback: null,
          prepare: (to, data) => ({ username: name, room, data }),
          send: (prepared) => socket.emit("data", prepared),
          decode: (data) => data,
          close() {
            socket.close();
            return Promise.resolve();
          },
        };
        socket.on("data", (data) => peer.dataCallback?.(data));
        socket.on("ready", (who) => {
          const other = Object.keys(who)[0];
          peer.others.push(other);
          peer.peerCallback?.(other);
        });
        socket.once("connect", () => {
          socket.emit("join", { username: name, room });
          // The contract has no answer to `join`: the newcomer is in once the
          // one already there hears `ready` (see pair()).
          resolve(peer);
        });
        socket.once("connect_error", reject);
      });
    },
  },
};
const dialect = dialects[config.dialect];

// Two peers in a room of their own, each knowing the other.
async function pair(room) {
  const a = await dialect.join(room, `${room}a`);
  const heard = config.dialect === "raw" ? Promise.resolve() : new Promise((resolve) => (a.peerCallback = resolve));
  const b = await dialect.join(room, `${room}b`);
  await withTimeout(heard, 10000, `${room}: the first peer never heard of the second`);
  a.peerCallback = null;
  return [a, b];
}

async function inBatches(count, concurrency, make) {
  const made = new Array(count);
  let next = 0;
  async function worker() {
    while (next < count) {
      const k = next++;
      made[k] = await make(k);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return made;
}

function quantiles(values) {
  values.sort((x, y) => x - y);
  const at = (q) => (values.length ? values[Math.min(values.length - 1, Math.floor(q * values.length))] : null);
  return { count: values.length, p50: at(0.5), p99: at(0.99), max: values.length ? values[values.length - 1] : null };
}

function cpuMeter() {
  const cpu = process.cpuUsage();
  const wall = performance.now();
  return () => {
    const used = process.cpuUsage(cpu);
    return (used.user + used.system) / 1000 / (performance.now() - wall);
  };
}

function emit(result) {
  // Exit only once the line is out: process.exit() would cut a piped stdout short.
  return new Promise((resolve) => process.stdout.write(JSON.stringify(result) + "\n", resolve));
}

async function closed() {
  const pairs = await inBatches(config.pairs, 50, (i) => pair(`pair${i}`));
  let counting = false;
  let stopped = false;
  let messages = 0;
  const rtts = [];
  for (const [a, b] of pairs) {
    // The generator's own work per message stays small: frames are encoded
    // once, and round trips are timed here rather than read from the payload.
    const fromA = a.prepare(a.others[0], payload(1));
    const fromB = b.prepare(b.others[0], payload(1));
    let sentAt = 0;
    b.dataCallback = () => {
      if (counting) messages++;
      if (!stopped) b.send(fromB);
    };
    a.dataCallback = () => {
      const now = performance.now();
      if (counting) {
        messages++;
        rtts.push(now - sentAt);
      }
      if (!stopped) {
        sentAt = now;
        a.send(fromA);
      }
    };
    sentAt = performance.now();
    a.send(fromA);
  }
  await sleep(config.warmup * 1000);
  counting = true;
  const cpu = cpuMeter();
  const started = performance.now();
  await sleep(config.seconds * 1000);
  counting = false;
  const seconds = (performance.now() - started) / 1000;
  const load = cpu();
  stopped = true;
  await Promise.all(pairs.flat().map((peer) => peer.close()));
  return { messages, seconds, rate: messages / seconds, rtt_ms: quantiles(rtts), cpu: load };
}

async function open() {
  const pairs = await inBatches(config.pairs, 50, (i) => pair(`pair${i}`));
  let counting = false;
  let received = 0;
  const latencies = [];
  for (const [, b] of pairs) {
    b.dataCallback = (frame) => {
      const data = b.decode(frame);
      if (counting && data.t > 0) {
        received++;
        latencies.push(performance.now() - data.t);
      }
    };
  }
  // Sends on a 1 ms tick, as many as the offered rate owes by then.
  const run = async (seconds, measure) => {
    const started = performance.now();
    let sent = 0;
    const end = started + seconds * 1000;
    while (performance.now() < end) {
      const due = Math.floor(((performance.now() - started) * config.rate) / 1000);
      for (; sent < due; sent++) {
        const [a] = pairs[sent % pairs.length];
        a.send(a.prepare(a.others[0], payload(measure ? performance.now() : 0)));
      }
      await sleep(1);
    }
    return sent;
  };
  await run(config.warmup, false);
  counting = true;
  const cpu = cpuMeter();
  const started = performance.now();
  const sent = await run(config.seconds, true);
  const sending = (performance.now() - started) / 1000;
  const load = cpu();
  // What is still in flight has a second to arrive; later is lost to the count.
  const deadline = performance.now() + 1000;
  while (received < sent && performance.now() < deadline) await sleep(5);
  counting = false;
  await Promise.all(pairs.flat().map((peer) => peer.close()));
  return { offered: config.rate, sent, received, rate: sent / sending, latency_ms: quantiles(latencies), cpu: load };
}

async function idle() {
  const started = performance.now();
  const pairs = await inBatches(config.connections / 2, config.concurrency, (i) => pair(`idle${i}`));
  const seconds = (performance.now() - started) / 1000;
  await emit({ event: "joined", connections: pairs.length * 2, seconds });
  // Hold them until the benchmark has measured the server.
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.on("end", resolve));
  await Promise.all(pairs.flat().map((peer) => peer.close()));
  return { connections: pairs.length * 2, seconds };
}

async function churn() {
  const residents = await inBatches(config.rooms, 50, (i) => dialect.join(`churn${i}`, `resident${i}`));
  let cycles = 0;
  const joins = [];
  const errors = [];
  let running = true;
  const cpu = cpuMeter();
  const started = performance.now();
  async function visit(i) {
    const resident = residents[i];
    for (let k = 0; running; k++) {
      const begun = performance.now();
      try {
        const heard = new Promise((resolve) => (resident.peerCallback = resolve));
        const visitor = await withTimeout(dialect.join(`churn${i}`, `visitor${i}-${k}`), 10000, "join");
        if (config.dialect !== "raw") await withTimeout(heard, 10000, "the resident never heard of the visitor");
        joins.push(performance.now() - begun);
        await visitor.close();
        cycles++;
      } catch (error) {
        errors.push(String(error.message ?? error));
        if (errors.length > 100) running = false;
      }
    }
  }
  const visitors = residents.map((_, i) => visit(i));
  await sleep(config.seconds * 1000);
  running = false;
  await Promise.all(visitors);
  const seconds = (performance.now() - started) / 1000;
  const load = cpu();
  await Promise.all(residents.map((peer) => peer.close()));
  return { cycles, seconds, rate: cycles / seconds, join_ms: quantiles(joins), errors: errors.slice(0, 3), cpu: load };
}

const workloads = { closed, open, idle, churn };
try {
  const result = await workloads[config.workload]();
  await emit(result);
  process.exit(0);
} catch (error) {
  process.stderr.write(`loadgen: ${error.stack ?? error}\n`, () => process.exit(1));
}
