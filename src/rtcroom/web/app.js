// The call page: the step before joining (prejoin.js), the call first, then the
// rest of the page, one feature module at a time (chat.js, files.js,
// controls.js, settings.js, stats-view.js, layout.js; what they share is in
// ui.js), on the client library (rtcroom.js).
import { prejoin } from "./prejoin.js";
import { FILE_CHANNEL, ROOM_PATTERN, RoomClient, RoomError, basePath, tokenGrants, tokenName } from "./rtcroom.js";
import {
  $,
  addTile,
  announce,
  button,
  constraints,
  describe,
  firstFrame,
  loadStats,
  loadTransfer,
  notice,
  once,
  play,
  releaseCall,
  setTileName,
  setTileState,
  showEnd,
  showPeerState,
  showReaction,
  showNotice,
  statusLine,
} from "./ui.js";

/**
 * @typedef {import("./rtcroom.js").RemotePeer} RemotePeer
 * @typedef {import("./rtcroom.js").ChatMessage} ChatMessage
 * @typedef {import("./files.js").IncomingFile} IncomingFile
 * @typedef {import("./ui.js").Tile} Tile
 */

// The longest the page waits for the first remote frame before building the
// rest of itself (see quietSetup).
const QUIET_SETUP_MS = 1000;

// Joins and departures are announced once the page has said who is here.
const announced = { joined: false };

/** The page's features: none is needed for the call to start, so they load once it has. */
const loadFeatures = once(() =>
  Promise.all([
    import("./chat.js"),
    import("./files.js"),
    import("./controls.js"),
    import("./settings.js"),
    import("./stats-view.js"),
    import("./layout.js"),
  ]),
);

/**
 * The call first: from the join until the first remote frame is on screen
 * (or QUIET_SETUP_MS have passed, or nobody else is here), the page changes
 * nothing but what that frame needs, a remote tile once its first track
 * arrives; no text is drawn, neither the bars nor the labels (body.setting-up:
 * a fresh page's first text loads its fonts). Every change is a style,
 * layout and raster pass that the offer, the answer and the first frame
 * would wait behind (docs/benchmarks.md).
 * @param {string} room
 * @returns {{settled: Promise<void>, settle: () => void}}
 */
function quietSetup(room) {
  /** @type {() => void} */
  let settle = () => {};
  /** @type {Promise<void>} */
  const settled = new Promise((resolve) => (settle = resolve));
  setTimeout(settle, QUIET_SETUP_MS);
  settled.then(() => {
    $("room-name").textContent = room;
    document.title = `${room} · rtcroom`;
    document.body.classList.remove("setting-up");
  });
  return { settled, settle };
}

/**
 * The status line: how many are in the call. It waits for the end of the setup too.
 * @param {RoomClient} client
 */
function updateStatus(client) {
  if (!client.id || document.body.classList.contains("setting-up")) return;
  const others = client.peers.size;
  statusLine.textContent = others === 0 ? "Waiting for others…" : `${others + 1} in the call`;
}

/**
 * The others' tiles: a camera tile per peer (at its first track during the
 * setup), a tile per shared screen; their connection state; gone when they leave.
 * @param {RoomClient} client
 * @param {{settled: Promise<void>, settle: () => void}} setup
 */
function peerTiles(client, { settled, settle }) {
  /** @type {Map<string, Tile>} camera tiles of the others, by peer id */
  const tiles = new Map();
  /** @type {Map<MediaStream, Tile>} screen tiles, ours and the others' */
  const screenTiles = new Map();
  // In SFU mode, each tile's width decides the simulcast layer it receives.
  const widths = new ResizeObserver((entries) => {
    for (const entry of entries) {
      const peer = client.peers.get(/** @type {HTMLElement} */ (entry.target).dataset.peer ?? "");
      if (peer) client.setReceiveWidth(peer, entry.contentRect.width);
    }
  });
  /** What a tile says of its connection: the peer's own, or the SFU's in SFU mode. */
  const stateOf = (/** @type {RemotePeer} */ peer) =>
    client.mode === "sfu" ? (client.sfu.subscriber?.connectionState ?? "connecting") : peer.pc.connectionState;

  /**
   * The camera tile of a peer still in the room, made at the first call.
   * @param {RemotePeer} peer
   */
  function peerTile(peer) {
    let tile = tiles.get(peer.id);
    if (!tile && client.peers.get(peer.id) === peer) {
      tile = addTile({ name: peer.name || "Guest", peerId: peer.id });
      setTileState(tile, { connection: stateOf(peer) });
      showPeerState(tile, peer.state);
      tile.video.dataset.peer = peer.id;
      widths.observe(tile.video);
      tiles.set(peer.id, tile);
      updateStatus(client);
    }
    return tile;
  }
  client.addEventListener("peerjoined", (event) => {
    const { peer } = /** @type {CustomEvent} */ (event).detail;
    // A peer that sends nothing (a recorder) has no first track to wait for.
    if (peer.state.camera === "none" && peer.state.mic === "none") settle();
    // During the setup, the tile comes with the peer's first track (or once
    // the setup is over, for a peer that sends nothing).
    settled.then(() => peerTile(peer));
    if (announced.joined) announce(`${peer.name || "Guest"} joined.`);
  });
  client.addEventListener("track", (event) => {
    const { peer } = /** @type {CustomEvent} */ (event).detail;
    const tile = peerTile(peer);
    if (!tile) return;
    // Attach the stream once it has a track: a <video> given an empty stream
    // starts rendering later than one given a stream with its track.
    if (tile.video.srcObject !== peer.stream) {
      tile.video.srcObject = peer.stream;
      firstFrame(tile.video).then(settle);
    }
    play(tile.video);
    if (client.mode === "sfu") client.setReceiveWidth(peer, tile.video.clientWidth);
  });
  client.addEventListener("streamadded", (event) => {
    const { peer, stream } = /** @type {CustomEvent} */ (event).detail;
    const tile = addTile({ name: `${peer.name} (screen)`, peerId: peer.id, screen: true });
    tile.video.srcObject = stream;
    tile.video.muted = true;
    play(tile.video);
    screenTiles.set(stream, tile);
  });
  client.addEventListener("streamremoved", (event) => {
    const { stream } = /** @type {CustomEvent} */ (event).detail;
    screenTiles.get(stream)?.figure.remove();
    screenTiles.delete(stream);
  });
  client.addEventListener("connectionstatechange", (event) => {
    const { peer, state } = /** @type {CustomEvent} */ (event).detail;
    const tile = tiles.get(peer.id);
    if (tile && client.mode !== "sfu") setTileState(tile, { connection: state });
  });
  client.addEventListener("sfustatechange", () => {
    for (const [id, tile] of tiles) {
      const peer = client.peers.get(id);
      if (peer) setTileState(tile, { connection: stateOf(peer) });
    }
  });
  // What each says of itself: muted, camera off, hand raised, a recorder.
  client.addEventListener("state", (event) => {
    const { peer, state } = /** @type {CustomEvent} */ (event).detail;
    const tile = tiles.get(peer.id);
    const before = tile?.figure.classList.contains("hand") ?? false;
    if (tile) showPeerState(tile, state);
    if (state.hand && !before) announce(`${peer.name || "Guest"} raised their hand.`);
  });
  client.addEventListener("reaction", (event) => {
    const { peer, emoji } = /** @type {CustomEvent} */ (event).detail;
    const tile = tiles.get(peer.id);
    if (tile) showReaction(tile, emoji);
    announce(`${peer.name || "Guest"} reacted ${emoji}`);
  });
  client.addEventListener("peerleft", (event) => {
    const { peer } = /** @type {CustomEvent} */ (event).detail;
    const tile = tiles.get(peer.id);
    if (tile) widths.unobserve(tile.video);
    tile?.figure.remove();
    tiles.delete(peer.id);
    for (const [stream, tile] of screenTiles) {
      if (peer.extraStreams.has(stream.id)) {
        tile.figure.remove();
        screenTiles.delete(stream);
      }
    }
    updateStatus(client);
    announce(`${peer.name || "Guest"} left.`);
  });
  return { tiles, screenTiles };
}

/**
 * The recording notice: on every page whenever a recorder is in the room
 * (a participant whose state says kind "recorder": `rtcroom record`).
 * @param {RoomClient} client
 */
function recordingNotice(client) {
  const banner = $("recording");
  let was = false;
  const update = () => {
    const recorders = [...client.peers.values()].filter((peer) => peer.state.kind === "recorder");
    const now = recorders.length > 0;
    banner.hidden = !now;
    const names = recorders.map((peer) => peer.name || "Guest").join(", ");
    banner.textContent = now ? `Recording: this call is recorded by ${names}` : "";
    if (now !== was) announce(now ? `This call is being recorded by ${names}.` : "The recording stopped.");
    was = now;
  };
  for (const name of ["joined", "peerjoined", "peerleft", "state", "reconnected"]) client.addEventListener(name, update);
}

/** What the end screen says for an error that ended the call: title, reason. */
const ENDS = /** @type {Record<string, string>} */ ({
  kicked: "You were removed from the call",
  unreachable: "The server cannot be reached",
  closed: "The connection to the server was lost",
});

/**
 * The end screen for an error that ended the call (or kept us out).
 * @param {RoomClient} client
 * @param {unknown} error
 */
function endOf(client, error) {
  const code = error instanceof RoomError ? error.code : "";
  const title = ENDS[code] ?? (client.id ? "The call ended" : "You could not join");
  showEnd({ title, reason: describe(error), room: client.room, name: client.name, release: () => releaseCall(client) });
}

/**
 * Errors and the server connection's ups and downs, in plain words.
 * @param {RoomClient} client
 */
function connectionNotices(client) {
  client.addEventListener("error", (event) => {
    showNotice(describe(/** @type {CustomEvent} */ (event).detail.error));
  });
  client.addEventListener("close", (event) => {
    const { error } = /** @type {CustomEvent} */ (event).detail;
    delete document.body.dataset.reconnecting;
    if (error) {
      statusLine.textContent = "Disconnected";
      showNotice(describe(error));
      endOf(client, error);
    }
  });
  // The server connection dropped: calls go on (they are peer to peer) while
  // the client reconnects.
  const LOST = "The connection to the server was lost. Reconnecting… (calls already set up go on meanwhile.)";
  client.addEventListener("reconnecting", (event) => {
    document.body.dataset.reconnecting = "true";
    statusLine.textContent = "Reconnecting…";
    // A blip passes unnoticed; a few seconds without the server are worth saying.
    if (/** @type {CustomEvent} */ (event).detail.attempt >= 4) showNotice(LOST);
  });
  client.addEventListener("reconnected", () => {
    delete document.body.dataset.reconnecting;
    if (notice.textContent === LOST) {
      notice.hidden = true;
      announce("Reconnected to the server.");
    }
    updateStatus(client);
  });
}

/**
 * Chat messages and file channels may come during the setup, before chat.js
 * and files.js have loaded: kept for them, handed over by `take`.
 * @param {RoomClient} client
 */
function keepUntilLoaded(client) {
  /** @type {ChatMessage[]} */
  const messages = [];
  /** @type {IncomingFile[]} */
  const files = [];
  /** @type {((file: IncomingFile) => void) | null} */
  let receive = null;
  /** @param {Event} event */
  const onChat = (event) => messages.push(/** @type {CustomEvent} */ (event).detail.message);
  client.addEventListener("chat", onChat);
  // Files the others send: their channels are taken as they open (what
  // arrives meanwhile is kept for transfer.js: holdChannel).
  client.addEventListener("datachannel", (event) => {
    const { peer, channel } = /** @type {CustomEvent<{peer: RemotePeer, channel: RTCDataChannel}>} */ (event)
      .detail;
    if (channel.label !== FILE_CHANNEL.label) return; // not ours: left to whoever opened it
    /** @type {MessageEvent[]} */
    const held = [];
    channel.binaryType = "arraybuffer";
    channel.onmessage = (message) => held.push(message);
    const file = { peer, channel, held };
    if (receive) return receive(file);
    files.push(file);
    loadTransfer().catch(() => {}); // wanted soon: fetched while files.js loads
  });
  return {
    /** The messages so far (chat.js listens from now on). */
    messages() {
      client.removeEventListener("chat", onChat);
      return messages.splice(0);
    },
    /** The file channels so far, and a way to be told of the next ones. */
    files() {
      return {
        incoming: files.splice(0),
        /** @param {(file: IncomingFile) => void} take */
        listen: (take) => (receive = take),
      };
    },
  };
}

async function main() {
  const room = decodeURIComponent(location.pathname.slice(basePath().length).replace(/^\/r\//, "").replace(/\/$/, ""));
  if (!ROOM_PATTERN.test(room)) {
    quietSetup(room).settle();
    statusLine.textContent = "Invalid room";
    showNotice("This room name is not valid: use letters, digits, - and _ (at most 64).");
    return;
  }
  const params = new URLSearchParams(location.search);
  // An access token (?token=...) says what we may do (without one,
  // everything), and may name us: then no name is asked.
  const token = params.get("token");
  let name = (params.get("name") ?? "").trim().slice(0, 64) || tokenName(token);
  const grants = tokenGrants(token);
  const mayPublish = !grants || grants.includes("publish");
  /** @type {Promise<{stream: MediaStream | null, error: unknown}>} */
  let media;
  /** @type {import("./rtcroom.js").ParticipantState | null} how the others first see us, when known before the join */
  let initial = null;
  if (params.get("prejoin") === "0" && name) {
    // Straight into the call (a kiosk, a site with its own step before it):
    // join while the camera starts, the tracks slot into the calls when ready.
    media = mayPublish ? openLocalMedia(true).then(rememberedChoices) : Promise.resolve({ stream: null, error: "viewer" });
  } else {
    // The step before joining; meanwhile the socket is open (room.html) and
    // the call's modules load, so the call starts sooner after "Join".
    loadFeatures().catch(() => {});
    let first = true;
    const ready = await prejoin({
      room,
      name,
      mayPublish,
      media: () => (mayPublish ? openLocalMedia(first) : Promise.resolve({ stream: null, error: "viewer" })).finally(() => (first = false)),
    });
    name = ready.name;
    media = Promise.resolve(ready);
    initial = mediaState(ready.stream);
  }
  const setup = quietSetup(room);
  if (grants && !grants.includes("subscribe")) {
    showNotice("Your link does not allow receiving audio or video, which this call page needs. Ask for another link.");
  }
  if (grants && !grants.includes("data")) {
    button("toggle-chat").hidden = true;
  }

  const client = new RoomClient({
    room,
    name,
    token,
    localStream: media.then((m) => m.stream),
    early: /** @type {any} */ (window).rtcroomEarly ?? null,
    // ?relay=1 in the link: everything through TURN. The setting: so when
    // the server has TURN (else it would keep every later call from connecting).
    relayOnly: params.get("relay") === "1" ? true : localStorage.getItem("rtcroom.relay") === "1" ? "if-available" : false,
  });
  client.addEventListener("norelay", (event) => {
    const { required } = /** @type {CustomEvent<{required: boolean}>} */ (event).detail;
    if (required) {
      showNotice("This link asks to relay the call, but this server has no relay (TURN) server, so the call cannot connect. Open the link without relay=1.");
    } else {
      showNotice("Relay only is off for this call: this server has no relay (TURN) server.", "info");
    }
  });
  // Sent with the join: the others never see us otherwise.
  if (initial) client.setState(initial);
  // Exposed for debugging in the console and for tests.
  Object.assign(window, { rtcroom: client });
  const { tiles, screenTiles } = peerTiles(client, setup);
  connectionNotices(client);
  recordingNotice(client);
  // Chat and file channels may open during the setup: listen from the start.
  const early = keepUntilLoaded(client);

  // Join first: when the server's answer is already here (the room page's
  // inline script joined), this sends the offers to the others right away.
  // The rest of the page is built once the setup is over.
  const joining = client.join().then(
    () => {
      // Alone in the room: no frame to wait for.
      if (client.peers.size === 0) setup.settle();
      return true;
    },
    (err) => {
      setup.settle();
      statusLine.textContent = "Not connected";
      showNotice(describe(err));
      endOf(client, err);
      return false;
    },
  );
  await setup.settled; // (after the handler that ends body.setting-up)
  const features = loadFeatures();
  // Once both are over: the setup (just now) and the join (which may end
  // later, when a name was asked first).
  joining.then((joined) => {
    if (!joined) return;
    updateStatus(client);
    const others = [...client.peers.values()].map((peer) => peer.name || "Guest");
    announce(`You joined ${room}. ${others.length ? `In the call: ${others.join(", ")}.` : "Nobody else is here yet."}`);
    announced.joined = true;
  });

  // The name the others see: the server may have set it (client.name, once joined).
  const local = addTile({ name: `${client.name} (you)`, local: true, first: true });
  // The server may name us otherwise (the token's name, the site's hook):
  // our own tile says what the others see.
  joining.then((joined) => {
    if (joined) setTileName(local, `${client.name} (you)`);
  });
  const { stream, error: mediaError } = await media;
  // What the others see of us until the controls take over: what we send.
  client.setState(mediaState(stream));
  if (stream) {
    local.video.srcObject = stream;
    play(local.video);
    const off = (/** @type {string} */ kind) => stream.getTracks().some((t) => t.kind === kind && !t.enabled);
    setTileState(local, { cameraOff: off("video"), muted: off("audio") });
  } else {
    setTileState(local, { noMedia: true });
    const denied = mediaError instanceof DOMException && mediaError.name === "NotAllowedError";
    showNotice(
      mediaError === "viewer"
        ? "You joined as a viewer: your link does not allow sending video or audio."
        : denied
          ? "Camera and microphone access was refused: you joined receive-only. Others cannot see or hear you."
          : "No camera or microphone was found: you joined receive-only. Others cannot see or hear you.",
      "info",
    );
  }
  const [chat, files, controls, settings, statsView, layout] = await features;
  const panel = chat.sidePanel();
  chat.chat(client, panel, early.messages());
  files.fileTransfers(client, panel, early.files());
  controls.mediaControls(client, local);
  controls.screenShare(client, client.name, screenTiles);
  controls.callControls(client, room);
  controls.handAndReactions(client, local);
  settings.settings(client, local);
  statsView.statsOverlay(client, tiles);
  statsView.activeSpeaker(client, tiles);
  statsView.connectionQuality(client, local);
  layout.layouts(client, local);
  setTimeout(() => {
    loadStats().catch(() => {});
    loadTransfer().catch(() => {});
  }, 1000);
  // Joined, and the page is all there (tests wait for this).
  if (await joining) document.body.dataset.joined = "true";
}

/**
 * The camera and microphone off if they were chosen off before (prejoin.js remembers).
 * @param {{stream: MediaStream | null, error: unknown}} media
 */
function rememberedChoices(media) {
  for (const track of media.stream?.getTracks() ?? []) {
    const key = track.kind === "audio" ? "rtcroom.micOff" : "rtcroom.cameraOff";
    if (localStorage.getItem(key) === "1") track.enabled = false;
  }
  return media;
}

/**
 * What the others see of what we send: on, off (a disabled track) or none.
 * @param {MediaStream | null} stream
 * @returns {import("./rtcroom.js").ParticipantState}
 */
function mediaState(stream) {
  /** @param {string} kind */
  const of = (kind) => {
    const track = stream?.getTracks().find((t) => t.kind === kind);
    return !track ? "none" : track.enabled ? "on" : "off";
  };
  return { mic: of("audio"), camera: of("video") };
}

/**
 * Camera and microphone, with the devices remembered from the settings.
 * The room page starts this request before the modules load: `useEarly`
 * takes that one (a retry asks again).
 * @param {boolean} useEarly
 */
async function openLocalMedia(useEarly) {
  /** @type {Promise<MediaStream> | undefined} */
  const early = useEarly ? /** @type {any} */ (window).rtcroomEarlyMedia : undefined;
  /** @type {(() => Promise<MediaStream>)[]} */
  const attempts = [
    () => early ?? navigator.mediaDevices.getUserMedia({ audio: constraints("audio"), video: constraints("video") }),
    () => navigator.mediaDevices.getUserMedia({ audio: constraints("audio") }),
    () => navigator.mediaDevices.getUserMedia({ video: constraints("video") }),
  ];
  /** @type {unknown} */
  let lastError = null;
  for (const attempt of attempts) {
    try {
      return { stream: await attempt(), error: null };
    } catch (err) {
      lastError = err;
      if (err instanceof DOMException && err.name === "NotAllowedError") break;
    }
  }
  return { stream: null, error: lastError };
}

main();
