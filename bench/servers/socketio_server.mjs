// Node's socket.io server relaying the tutorials' room events, for the
// benchmarks: what a user might pick instead of a Python server. The same
// contract as the tutorials' Python servers: `join` {username, room} enters
// the room and tells the others `ready`; `data` {room, data} goes to the
// rest of the room.
//
//   node bench/servers/socketio_server.mjs PORT
import { Server } from "socket.io";

const port = Number(process.argv[2]);
const io = new Server({ cors: { origin: "*" } });
io.on("connection", (socket) => {
  socket.on("join", (message) => {
    socket.join(message.room);
    socket.to(message.room).emit("ready", { [message.username]: message.username });
  });
  socket.on("data", (message) => {
    socket.to(message.room).emit("data", message.data);
  });
});
io.listen(port);
