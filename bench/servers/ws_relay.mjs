// The floor: a bare WebSocket relay on Node's `ws`, with no validation, no
// limits and no protocol. A client joins the room named in the URL
// (ws://HOST:PORT/?room=R) and every frame it sends goes, unchanged, to the
// other members of that room. Nothing a real signaling server could be
// faster than, for the same frames.
//
//   node bench/servers/ws_relay.mjs PORT
import { WebSocketServer } from "ws";

const port = Number(process.argv[2]);
const rooms = new Map();
const server = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: false });
server.on("connection", (socket, request) => {
  const room = new URL(request.url, "http://relay").searchParams.get("room") ?? "";
  let members = rooms.get(room);
  if (!members) rooms.set(room, (members = new Set()));
  members.add(socket);
  socket.on("message", (frame, isBinary) => {
    for (const other of members) if (other !== socket) other.send(frame, { binary: isBinary });
  });
  socket.on("close", () => {
    members.delete(socket);
    if (members.size === 0) rooms.delete(room);
  });
});
