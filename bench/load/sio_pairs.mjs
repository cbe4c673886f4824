// Closed-loop Socket.IO relay load, the tutorials' way: pairs of clients in
// rooms of two (`join` {username, room}); in each pair one `data` event is
// in flight at a time, bounced back and forth through the server.
//
//   node sio_pairs.mjs URL PAIRS SECONDS [WARMUP_SECONDS]
//
// Prints one JSON line: {"messages": relayed in the measured window,
// "seconds": its length, "rtt_ms": sorted round trips of a sample}.
import { io } from "socket.io-client";

const [url, pairsArg, secondsArg, warmupArg] = process.argv.slice(2);
const pairs = Number(pairsArg);
const seconds = Number(secondsArg);
const warmup = Number(warmupArg ?? 1);
// A candidate, as the tutorials send them.
const CANDIDATE = {
  type: "candidate",
  candidate: { candidate: "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", sdpMid: "0", sdpMLineIndex: 0 },
};

function connect() {
  return new Promise((resolve, reject) => {
    const socket = io(url, { transports: ["websocket"], reconnection: false, forceNew: true });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

let counting = false;
let messages = 0;
const rtts = [];
let stopped = false;

async function pair(i) {
  const room = `pair${i}`;
  const a = await connect();
  a.emit("join", { username: `a${i}`, room });
  const ready = new Promise((resolve) => a.once("ready", resolve));
  const b = await connect();
  b.emit("join", { username: `b${i}`, room });
  await ready;
  const send = (socket, name) => socket.emit("data", { username: name, room, data: CANDIDATE });
  let sentAt = 0;
  b.on("data", () => {
    if (counting) messages++;
    if (!stopped) send(b, `b${i}`);
  });
  a.on("data", () => {
    if (counting) {
      messages++;
      if (rtts.length < 20000) rtts.push(performance.now() - sentAt);
    }
    if (!stopped) {
      sentAt = performance.now();
      send(a, `a${i}`);
    }
  });
  return [a, b, () => { sentAt = performance.now(); send(a, `a${i}`); }];
}

const all = [];
for (let i = 0; i < pairs; i++) all.push(await pair(i));
for (const [, , start] of all) start();
await new Promise((r) => setTimeout(r, warmup * 1000));
counting = true;
const started = performance.now();
await new Promise((r) => setTimeout(r, seconds * 1000));
counting = false;
const elapsed = (performance.now() - started) / 1000;
stopped = true;
rtts.sort((x, y) => x - y);
// At most 2000 evenly spaced round trips: quantiles survive, the line stays short.
const step = Math.max(1, Math.ceil(rtts.length / 2000));
const sample = rtts.filter((_, k) => k % step === 0).map((x) => Math.round(x * 1000) / 1000);
for (const [a, b] of all) { a.close(); b.close(); }
// Exit only once the line is out: process.exit() would cut a piped stdout short.
process.stdout.write(JSON.stringify({ messages, seconds: elapsed, rtt_ms: sample }) + "\n", () => process.exit(0));
