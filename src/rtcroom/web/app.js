// The call page: UI on top of the client library (rtcroom.js, transfer.js, stats.js).
import { FILE_CHANNEL, ROOM_PATTERN, RoomClient, RoomError, tokenGrants } from "./rtcroom.js";

// What the first frame does not need (statistics, file transfer) is loaded a
// second after the page is set up, or at first use: every request a fresh
// page makes delays its scripts, and so the call, on a busy machine
// (docs/benchmarks.md).
const loadStats = once(() => import("./stats.js"));
const loadTransfer = once(() => import("./transfer.js"));

/**
 * `load` run at the first call, its promise shared by the later ones; a
 * failed load (the network went away) is tried again at the next call.
 * @template T
 * @param {() => Promise<T>} load
 * @returns {() => Promise<T>}
 */
function once(load) {
  /** @type {Promise<T> | null} */
  let loading = null;
  return () =>
    (loading ??= load().catch((err) => {
      loading = null;
      throw err;
    }));
}

/**
 * @typedef {import("./rtcroom.js").RemotePeer} RemotePeer
 * @typedef {import("./rtcroom.js").ChatMessage} ChatMessage
 * @typedef {import("./transfer.js").Transfer} Transfer
 * @typedef {import("./stats.js").StatsSample} StatsSample
 * @typedef {{figure: HTMLElement, video: HTMLVideoElement, label: HTMLElement}} Tile
 */

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** @param {string} id */
const button = (id) => /** @type {HTMLButtonElement} */ (document.getElementById(id));
/** @param {string} id */
const select = (id) => /** @type {HTMLSelectElement} */ (document.getElementById(id));

const grid = $("grid");
// The longest the page waits for the first remote frame before building the
// rest of itself (see main).
const QUIET_SETUP_MS = 1000;
const statusLine = $("status");
const notice = $("notice");

/** Plain-words messages for the error codes a user can meet. */
const MESSAGES = {
  "room-full": "This room is full. Try another room or come back later.",
  unreachable: "The rtcroom server cannot be reached. Check your connection and reload the page.",
  closed: "The connection to the server was lost. Reload the page to rejoin.",
  "bad-message": "The server did not accept the request.",
  unauthorized: "Your link does not let you into this room (it may have expired). Ask for a new one.",
  forbidden: "Your link does not allow this.",
  "rate-limited": "Too many attempts from your network. Wait a minute, then reload the page.",
  "server-full": "The server is at capacity. Come back later.",
};

/**
 * Show a message to the user (never only in the console).
 * @param {string} text
 * @param {"info" | "error"} [level]
 */
function showNotice(text, level = "error") {
  notice.textContent = text;
  notice.dataset.level = level;
  notice.hidden = false;
}

/** @param {unknown} err */
function describe(err) {
  if (err instanceof RoomError) {
    return /** @type {Record<string, string>} */ (MESSAGES)[err.code] ?? err.message;
  }
  if (err instanceof DOMException && err.name === "NotAllowedError") return "Permission was refused.";
  return String(err instanceof Error ? err.message : err);
}

/**
 * A video tile: a <figure> with a <video> and a name.
 * @param {{name: string, peerId?: string, local?: boolean, screen?: boolean, first?: boolean}} options
 * `first` puts it before the others (our own camera).
 * @returns {Tile}
 */
function addTile({ name, peerId, local = false, screen = false, first = false }) {
  const figure = document.createElement("figure");
  figure.className = ["tile", local ? "local" : "", screen ? "screen" : ""].filter(Boolean).join(" ");
  const video = document.createElement("video");
  video.autoplay = true;
  video.playsInline = true;
  if (local) {
    video.muted = true;
    video.dataset.local = "true";
  }
  if (peerId && !screen) {
    video.dataset.peerId = peerId;
    figure.dataset.peerId = peerId;
  }
  if (screen) video.dataset.screen = peerId ?? "local";
  const label = document.createElement("figcaption");
  label.textContent = name;
  figure.append(video, label);
  if (first) grid.prepend(figure);
  else grid.append(figure);
  layout();
  return { figure, video, label };
}

/** Pick a column count that keeps tiles large for the number of tiles. */
function layout() {
  const count = grid.children.length;
  grid.dataset.count = String(count);
  grid.style.setProperty("--columns", String(count <= 1 ? 1 : count <= 4 ? 2 : 3));
}

/**
 * Resolves when `video` presents its first frame (or has one to present,
 * where requestVideoFrameCallback is missing).
 * @param {HTMLVideoElement} video
 * @returns {Promise<void>}
 */
function firstFrame(video) {
  return new Promise((resolve) => {
    if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) video.requestVideoFrameCallback(() => resolve());
    else video.addEventListener("loadeddata", () => resolve(), { once: true });
  });
}

/** @type {string} the speaker (audio output) picked in the settings */
let speakerId = localStorage.getItem("rtcroom.speaker") ?? "";

/**
 * Play a video; if the browser blocks sound without a user gesture, play it
 * muted and offer to turn sound on with a click.
 * @param {HTMLVideoElement} video
 */
function play(video) {
  if (speakerId && "setSinkId" in video) {
    /** @type {any} */ (video).setSinkId(speakerId).catch(() => {});
  }
  video.play().catch(() => {
    video.muted = true;
    video.play().catch(() => {});
    showNotice("Your browser blocked sound. Click anywhere to hear the others.", "info");
    document.addEventListener(
      "click",
      () => {
        for (const v of grid.querySelectorAll("video:not([data-local])")) {
          /** @type {HTMLVideoElement} */ (v).muted = false;
        }
        notice.hidden = true;
      },
      { once: true },
    );
  });
}

/**
 * Camera and microphone, with the devices remembered from the settings.
 * The room page starts this request before the modules load.
 */
async function openLocalMedia() {
  /** @type {Promise<MediaStream> | undefined} */
  const early = /** @type {any} */ (window).rtcroomEarlyMedia;
  /** @type {(() => Promise<MediaStream>)[]} */
  const attempts = [
    () => early ?? navigator.mediaDevices.getUserMedia({ audio: true, video: true }),
    () => navigator.mediaDevices.getUserMedia({ audio: true }),
    () => navigator.mediaDevices.getUserMedia({ video: true }),
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

/** @param {string} room */
async function askName(room) {
  const dialog = /** @type {HTMLDialogElement} */ ($("name-dialog"));
  const input = /** @type {HTMLInputElement} */ ($("dialog-name"));
  $("dialog-room").textContent = room;
  input.value = localStorage.getItem("rtcroom.name") ?? "";
  dialog.showModal();
  return new Promise((resolve) => {
    $("name-form").addEventListener("submit", (event) => {
      const name = input.value.trim();
      if (!name) {
        event.preventDefault();
        return;
      }
      resolve(name);
    });
  });
}

/**
 * @param {HTMLElement} element
 * @param {boolean} pressed
 * @param {string} on
 * @param {string} off
 */
function setToggle(element, pressed, on, off) {
  element.setAttribute("aria-pressed", String(pressed));
  const label = element.firstChild;
  if (label && label.nodeType === Node.TEXT_NODE) label.textContent = pressed ? on : off;
  else element.textContent = pressed ? on : off;
}

/** @param {number} bytes */
function formatBytes(bytes) {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(0)} kB`;
  return `${bytes} B`;
}

/** @param {number} time */
function formatTime(time) {
  return new Date(time).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

async function main() {
  const room = decodeURIComponent(location.pathname.replace(/^\/r\//, "").replace(/\/$/, ""));
  // The call first: from the join until the first remote frame is on screen
  // (or QUIET_SETUP_MS have passed, or nobody else is here), the page changes
  // nothing but what that frame needs, a remote tile once its first track
  // arrives; no text is drawn, neither the bars nor the labels (body.setting-up:
  // a fresh page's first text loads its fonts). Every change is a style,
  // layout and raster pass that the offer, the answer and the first frame
  // would wait behind (docs/benchmarks.md).
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
  if (!ROOM_PATTERN.test(room)) {
    settle();
    statusLine.textContent = "Invalid room";
    showNotice("This room name is not valid: use letters, digits, - and _ (at most 64).");
    return;
  }
  const params = new URLSearchParams(location.search);
  let name = (params.get("name") ?? "").trim().slice(0, 64);
  if (!name) name = await askName(room);
  localStorage.setItem("rtcroom.name", name);

  /** @type {Map<string, Tile>} camera tiles of the others, by peer id */
  const tiles = new Map();
  /** @type {Map<MediaStream, Tile>} screen tiles, ours and the others' */
  const screenTiles = new Map();

  // An access token (?token=...) says what we may do; without one, everything.
  const token = params.get("token");
  const grants = tokenGrants(token);
  const mayPublish = !grants || grants.includes("publish");
  if (grants && !grants.includes("subscribe")) {
    showNotice("Your link does not allow receiving audio or video, which this call page needs. Ask for another link.");
  }
  if (grants && !grants.includes("data")) {
    button("toggle-chat").hidden = true;
  }

  // Join while the camera starts: the tracks slot into the calls when ready.
  /** @type {Promise<{stream: MediaStream | null, error: unknown}>} */
  const media = mayPublish ? openLocalMedia() : Promise.resolve({ stream: null, error: "viewer" });
  const client = new RoomClient({
    room,
    name,
    token,
    localStream: media.then((m) => m.stream),
    early: /** @type {any} */ (window).rtcroomEarly ?? null,
    // ?relay=1 in the link, or the setting: everything through TURN.
    relayOnly: params.get("relay") === "1" || localStorage.getItem("rtcroom.relay") === "1",
  });
  // Exposed for debugging in the console and for tests.
  Object.assign(window, { rtcroom: client });

  /**
   * The camera tile of a peer still in the room, made at the first call.
   * @param {RemotePeer} peer
   */
  function peerTile(peer) {
    let tile = tiles.get(peer.id);
    if (!tile && client.peers.get(peer.id) === peer) {
      tile = addTile({ name: peer.name || "Guest", peerId: peer.id });
      tile.figure.dataset.state = peer.pc.connectionState;
      tiles.set(peer.id, tile);
      updateStatus();
    }
    return tile;
  }
  client.addEventListener("peerjoined", (event) => {
    const { peer } = /** @type {CustomEvent} */ (event).detail;
    // During the setup, the tile comes with the peer's first track (or once
    // the setup is over, for a peer that sends nothing).
    settled.then(() => peerTile(peer));
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
    layout();
  });
  client.addEventListener("connectionstatechange", (event) => {
    const { peer, state } = /** @type {CustomEvent} */ (event).detail;
    const tile = tiles.get(peer.id);
    if (tile) tile.figure.dataset.state = state;
  });
  client.addEventListener("peerleft", (event) => {
    const { peer } = /** @type {CustomEvent} */ (event).detail;
    tiles.get(peer.id)?.figure.remove();
    tiles.delete(peer.id);
    for (const [stream, tile] of screenTiles) {
      if (peer.extraStreams.has(stream.id)) {
        tile.figure.remove();
        screenTiles.delete(stream);
      }
    }
    layout();
    updateStatus();
  });
  client.addEventListener("error", (event) => {
    showNotice(describe(/** @type {CustomEvent} */ (event).detail.error));
  });
  client.addEventListener("close", (event) => {
    const { error } = /** @type {CustomEvent} */ (event).detail;
    delete document.body.dataset.reconnecting;
    if (error) {
      statusLine.textContent = "Disconnected";
      showNotice(describe(error));
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
    if (notice.textContent === LOST) notice.hidden = true;
    updateStatus();
  });

  function updateStatus() {
    // The status line waits for the end of the setup too.
    if (!client.id || document.body.classList.contains("setting-up")) return;
    const others = client.peers.size;
    statusLine.textContent = others === 0 ? "Waiting for others…" : `${others + 1} in the call`;
  }

  // Chat and file channels may open during the setup: listen from the start
  // (nothing in the panel shows until something arrives).
  chatPanel(client);

  // Join first: when the server's answer is already here (the room page's
  // inline script joined), this sends the offers to the others right away.
  // The rest of the page is built once the setup is over.
  const joining = client.join().then(
    () => {
      // Alone in the room: no frame to wait for.
      if (client.peers.size === 0) settle();
      return true;
    },
    (err) => {
      settle();
      statusLine.textContent = "Not connected";
      showNotice(describe(err));
      return false;
    },
  );
  await settled; // (after the handler above that ends body.setting-up)
  updateStatus();

  const local = addTile({ name: `${name} (you)`, local: true, first: true });
  const invite = `${location.origin}/r/${encodeURIComponent(room)}`;
  $("copy-link").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(invite);
      statusLine.textContent = "Invite link copied";
    } catch {
      window.prompt("Copy this link and send it:", invite);
    }
  });

  const { stream, error: mediaError } = await media;
  if (stream) {
    local.video.srcObject = stream;
    play(local.video);
  } else {
    local.figure.classList.add("no-media");
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
  mediaControls(client, local);
  screenShare(client, name, screenTiles);
  setTimeout(() => {
    loadStats().catch(() => {});
    loadTransfer().catch(() => {});
  }, 1000);
  statsOverlay(client, tiles);
  activeSpeaker(client, tiles);
  settings(client, local);

  $("leave").addEventListener("click", () => {
    client.leave();
    for (const track of client.localStream?.getTracks() ?? []) track.stop();
    location.assign("/");
  });
  window.addEventListener("pagehide", () => client.leave());
  /** @type {Record<string, string>} */
  const shortcuts = { m: "toggle-mic", v: "toggle-camera", c: "toggle-chat", s: "toggle-stats", p: "toggle-screen" };
  document.addEventListener("keydown", (event) => {
    const target = /** @type {HTMLElement} */ (event.target);
    if (target.closest("input, select, textarea, dialog") || event.ctrlKey || event.metaKey || event.altKey) return;
    const id = shortcuts[event.key];
    if (id) {
      event.preventDefault();
      button(id).click();
    }
  });
  // Joined, and the page is all there (tests wait for this).
  if (await joining) document.body.dataset.joined = "true";
}

/**
 * Mute and camera buttons; they act on whatever tracks we send now.
 * @param {RoomClient} client
 * @param {Tile} local
 */
function mediaControls(client, local) {
  const mic = button("toggle-mic");
  const cam = button("toggle-camera");
  const track = (/** @type {string} */ kind) =>
    client.localStream?.getTracks().find((t) => t.kind === kind);
  const refresh = () => {
    const audio = track("audio");
    const video = track("video");
    mic.disabled = !audio;
    cam.disabled = !video;
    setToggle(mic, !!audio && !audio.enabled, "Unmute", "Mute");
    setToggle(cam, !!video && !video.enabled, "Camera on", "Camera off");
    local.figure.classList.toggle("camera-off", !!video && !video.enabled);
  };
  mic.addEventListener("click", () => {
    const audio = track("audio");
    if (audio) audio.enabled = !audio.enabled;
    refresh();
  });
  cam.addEventListener("click", () => {
    const video = track("video");
    if (video) video.enabled = !video.enabled;
    refresh();
  });
  client.addEventListener("localstream", refresh);
  refresh();
}

/**
 * Chat and file transfers in the side panel.
 * @param {RoomClient} client
 */
function chatPanel(client) {
  const panel = $("chat-panel");
  const toggle = button("toggle-chat");
  const list = $("messages");
  const input = /** @type {HTMLInputElement} */ ($("chat-input"));
  const unread = $("unread");
  const recipients = select("file-to");
  const fileInput = /** @type {HTMLInputElement} */ ($("file-input"));
  let unreadCount = 0;

  /** @param {boolean} open */
  const show = (open) => {
    panel.hidden = !open;
    toggle.setAttribute("aria-pressed", String(open));
    document.body.classList.toggle("panel-open", open);
    if (open) {
      unreadCount = 0;
      unread.hidden = true;
      input.focus();
    }
  };
  toggle.addEventListener("click", () => show(panel.hidden));
  $("chat-close").addEventListener("click", () => show(false));

  const notify = () => {
    if (!panel.hidden) return;
    unreadCount += 1;
    unread.textContent = String(unreadCount);
    unread.hidden = false;
  };

  /** @param {HTMLElement} item */
  const append = (item) => {
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.append(item);
    if (atBottom) list.scrollTop = list.scrollHeight;
  };

  /** @param {ChatMessage} message */
  const addMessage = (message) => {
    const item = document.createElement("li");
    item.className = message.own ? "message own" : "message";
    const meta = document.createElement("div");
    meta.className = "meta";
    const who = document.createElement("strong");
    who.textContent = message.own ? "You" : message.name || "Guest";
    const when = document.createElement("time");
    when.dateTime = new Date(message.time).toISOString();
    when.textContent = formatTime(message.time);
    meta.append(who, " ", when);
    const text = document.createElement("p");
    text.textContent = message.text;
    item.append(meta, text);
    append(item);
  };

  client.addEventListener("chat", (event) => {
    addMessage(/** @type {CustomEvent} */ (event).detail.message);
    notify();
  });
  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    addMessage(client.sendChat(text));
    input.value = "";
  });

  /** @param {Transfer} transfer */
  const addTransfer = (transfer) => {
    const item = document.createElement("li");
    item.className = `transfer ${transfer.direction}`;
    item.dataset.transferId = transfer.id;
    item.dataset.peerId = transfer.peer.id;
    const title = document.createElement("div");
    title.className = "meta";
    title.textContent =
      transfer.direction === "send"
        ? `Sending ${transfer.name} to ${transfer.peer.name || "Guest"}`
        : `${transfer.peer.name || "Guest"} is sending ${transfer.name}`;
    const bar = document.createElement("progress");
    bar.max = Math.max(1, transfer.size);
    bar.value = 0;
    const line = document.createElement("div");
    line.className = "transfer-status";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "cancel";
    cancel.textContent = "Cancel";
    cancel.title = `Stop this transfer`;
    cancel.addEventListener("click", () => transfer.cancel("cancelled by the user"));
    item.append(title, bar, line, cancel);
    append(item);
    const render = () => {
      bar.value = transfer.bytes;
      const percent = transfer.size ? Math.floor((transfer.bytes / transfer.size) * 100) : 100;
      item.dataset.state = transfer.state;
      if (transfer.active) {
        line.textContent = `${percent}% · ${formatBytes(transfer.bytes)} of ${formatBytes(transfer.size)} · ${formatBytes(transfer.speed)}/s`;
      } else if (transfer.state === "done") {
        line.textContent = `${formatBytes(transfer.size)} · ${formatBytes(transfer.speed)}/s · SHA-256 verified`;
        cancel.remove();
        if (transfer.url && !item.querySelector("a")) {
          const link = document.createElement("a");
          link.href = transfer.url;
          link.download = transfer.name;
          link.className = "button download";
          link.textContent = `Download ${transfer.name}`;
          item.append(link);
        }
      } else {
        line.textContent = transfer.state === "failed" ? `Failed: ${transfer.reason}` : `Cancelled: ${transfer.reason}`;
        cancel.remove();
      }
    };
    transfer.addEventListener("progress", render);
    render();
    if (transfer.direction === "receive") notify();
  };

  // Files the others send: their channels are taken as they open, even while
  // transfer.js is still loading (what arrives meanwhile is kept for it).
  client.addEventListener("datachannel", (event) => {
    const { peer, channel } = /** @type {CustomEvent<{peer: RemotePeer, channel: RTCDataChannel}>} */ (event)
      .detail;
    if (channel.label !== FILE_CHANNEL.label) return; // not ours: left to whoever opened it
    /** @type {MessageEvent[]} */
    const held = [];
    channel.binaryType = "arraybuffer";
    channel.onmessage = (message) => held.push(message);
    loadTransfer().then(
      ({ receiveFile }) => receiveFile(peer, channel, addTransfer, held),
      () => channel.close(),
    );
  });

  /** @param {File} file */
  const send = async (file) => {
    const target = recipients.value;
    const peers = target ? [client.peers.get(target)] : [...client.peers.values()];
    if (peers.length === 0 || !peers[0]) {
      showNotice("There is no one to send the file to yet.", "info");
      return;
    }
    try {
      const { sendFile } = await loadTransfer();
      for (const peer of peers) if (peer) addTransfer(sendFile(peer, file));
      show(true);
    } catch (err) {
      showNotice(`File transfer is not available: ${describe(err)}`);
    }
  };
  fileInput.addEventListener("change", () => {
    for (const file of fileInput.files ?? []) send(file);
    fileInput.value = "";
  });
  const hint = $("drop-hint");
  document.addEventListener("dragover", (event) => {
    if (!event.dataTransfer?.types.includes("Files")) return;
    event.preventDefault();
    hint.hidden = false;
  });
  document.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget) hint.hidden = true;
  });
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    hint.hidden = true;
    for (const file of event.dataTransfer?.files ?? []) send(file);
  });

  // Who a file can go to: the peers there now, then those who come and go.
  /** @param {RemotePeer} peer */
  const addRecipient = (peer) => {
    const option = document.createElement("option");
    option.value = peer.id;
    option.textContent = peer.name || "Guest";
    recipients.append(option);
  };
  for (const peer of client.peers.values()) addRecipient(peer);
  client.addEventListener("peerjoined", (event) => addRecipient(/** @type {CustomEvent} */ (event).detail.peer));
  client.addEventListener("peerleft", (event) => {
    const { peer } = /** @type {CustomEvent} */ (event).detail;
    recipients.querySelector(`option[value="${CSS.escape(peer.id)}"]`)?.remove();
  });
}

/**
 * Share a screen or a window as an extra stream, next to the camera.
 * @param {RoomClient} client
 * @param {string} name
 * @param {Map<MediaStream, Tile>} screenTiles
 */
function screenShare(client, name, screenTiles) {
  const toggle = button("toggle-screen");
  if (!navigator.mediaDevices?.getDisplayMedia) {
    toggle.disabled = true;
    toggle.title = "This browser cannot share its screen";
    return;
  }
  /** @type {MediaStream | null} */
  let sharing = null;
  const stop = () => {
    if (!sharing) return;
    client.unpublish(sharing);
    for (const track of sharing.getTracks()) track.stop();
    screenTiles.get(sharing)?.figure.remove();
    screenTiles.delete(sharing);
    sharing = null;
    layout();
    setToggle(toggle, false, "Stop sharing", "Share screen");
  };
  toggle.addEventListener("click", async () => {
    if (sharing) return stop();
    try {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
      sharing = stream;
      const tile = addTile({ name: `${name} (your screen)`, local: true, screen: true });
      tile.video.srcObject = stream;
      play(tile.video);
      screenTiles.set(stream, tile);
      // The browser's own "Stop sharing" button ends the track.
      for (const track of stream.getTracks()) track.addEventListener("ended", stop);
      client.publish(stream, "screen");
      setToggle(toggle, true, "Stop sharing", "Share screen");
    } catch (err) {
      if (!(err instanceof DOMException && err.name === "NotAllowedError")) {
        showNotice(`Screen sharing failed: ${describe(err)}`);
      }
    }
  });
}

/**
 * Live connection statistics over each remote tile, with a 60 s bitrate chart.
 * @param {RoomClient} client
 * @param {Map<string, Tile>} tiles
 */
function statsOverlay(client, tiles) {
  const toggle = button("toggle-stats");
  /** @type {Map<string, StatsSample[]>} */
  const history = new Map();
  /** @type {ReturnType<typeof setInterval> | null} */
  let timer = null;
  const render = async () => {
    const { drawBitrateChart, formatBitrate, sampleStats } = await loadStats();
    for (const [id, peer] of client.peers) {
      const tile = tiles.get(id);
      if (!tile) continue;
      const samples = history.get(id) ?? [];
      const sample = await sampleStats(peer.pc, samples.at(-1) ?? null);
      samples.push(sample);
      if (samples.length > 61) samples.shift();
      history.set(id, samples);
      let overlay = /** @type {HTMLElement | null} */ (tile.figure.querySelector(".stats"));
      if (!overlay) {
        overlay = document.createElement("div");
        overlay.className = "stats";
        overlay.innerHTML = '<dl></dl><canvas width="160" height="36" aria-label="Bitrate in (green) and out (blue), last 60 s"></canvas>';
        tile.figure.append(overlay);
      }
      const rows = [
        ["Connection", sample.localCandidate ? `${sample.localCandidate} ↔ ${sample.remoteCandidate}` : "…"],
        ["RTT", sample.rtt === null ? "–" : `${Math.round(sample.rtt * 1000)} ms`],
        ["In", formatBitrate(sample.bitrateIn)],
        ["Out", formatBitrate(sample.bitrateOut)],
        ["FPS", sample.fps === null ? "–" : String(Math.round(sample.fps))],
        ["Loss", sample.packetLoss === null ? "–" : `${(sample.packetLoss * 100).toFixed(1)} %`],
        ["Codec", sample.codec || "–"],
      ];
      const list = /** @type {HTMLElement} */ (overlay.querySelector("dl"));
      list.replaceChildren(
        ...rows.flatMap(([term, value]) => {
          const dt = document.createElement("dt");
          dt.textContent = term;
          const dd = document.createElement("dd");
          dd.textContent = value;
          dd.dataset.stat = term.toLowerCase();
          return [dt, dd];
        }),
      );
      drawBitrateChart(/** @type {HTMLCanvasElement} */ (overlay.querySelector("canvas")), samples.slice(1));
    }
  };
  // Sample all the time (the chart covers the last 60 s), show on demand.
  timer = setInterval(() => render().catch(() => {}), 1000);
  toggle.addEventListener("click", () => {
    const on = !document.body.classList.contains("show-stats");
    document.body.classList.toggle("show-stats", on);
    toggle.setAttribute("aria-pressed", String(on));
  });
  client.addEventListener("peerleft", (event) => history.delete(/** @type {CustomEvent} */ (event).detail.peer.id));
  client.addEventListener("close", () => timer && clearInterval(timer));
}

/**
 * Highlight the tile of whoever speaks loudest, from the audio levels of the
 * incoming RTP streams (RTCRtpReceiver.getSynchronizationSources).
 * @param {RoomClient} client
 * @param {Map<string, Tile>} tiles
 */
function activeSpeaker(client, tiles) {
  let current = "";
  setInterval(() => {
    let loudest = "";
    let level = 0.02; // below this, nobody is speaking
    for (const [id, peer] of client.peers) {
      for (const receiver of peer.pc.getReceivers()) {
        if (receiver.track.kind !== "audio") continue;
        for (const source of receiver.getSynchronizationSources()) {
          if ((source.audioLevel ?? 0) > level) {
            level = source.audioLevel ?? 0;
            loudest = id;
          }
        }
      }
    }
    if (loudest === current) return;
    tiles.get(current)?.figure.classList.remove("speaking");
    tiles.get(loudest)?.figure.classList.add("speaking");
    current = loudest;
  }, 300);
}

/**
 * Pick camera, microphone and speaker; switch live and remember them.
 * @param {RoomClient} client
 * @param {Tile} local
 */
function settings(client, local) {
  const dialog = /** @type {HTMLDialogElement} */ ($("settings-dialog"));
  const camera = select("camera-select");
  const microphone = select("microphone-select");
  const speaker = select("speaker-select");
  const relay = /** @type {HTMLInputElement} */ ($("relay-only"));
  relay.checked = client.relayOnly;
  relay.addEventListener("change", () => {
    localStorage.setItem("rtcroom.relay", relay.checked ? "1" : "0");
    showNotice(
      relay.checked
        ? "Relay only takes effect when you join again: reload the page."
        : "Direct connections take effect when you join again: reload the page.",
      "info",
    );
  });

  const fill = async () => {
    const devices = await navigator.mediaDevices.enumerateDevices();
    const current = (/** @type {string} */ kind) =>
      client.localStream?.getTracks().find((t) => t.kind === kind)?.getSettings().deviceId ?? "";
    /**
     * @param {HTMLSelectElement} list
     * @param {MediaDeviceKind} kind
     * @param {string} chosen
     * @param {string} none
     */
    const options = (list, kind, chosen, none) => {
      const found = devices.filter((d) => d.kind === kind);
      list.replaceChildren(
        ...found.map((device, i) => {
          const option = document.createElement("option");
          option.value = device.deviceId;
          option.textContent = device.label || `${kind} ${i + 1}`;
          option.selected = device.deviceId === chosen;
          return option;
        }),
      );
      if (found.length === 0) list.append(new Option(none, ""));
      list.disabled = found.length === 0;
    };
    options(camera, "videoinput", current("video"), "No camera");
    options(microphone, "audioinput", current("audio"), "No microphone");
    options(speaker, "audiooutput", speakerId, "Default speaker");
    if (!("setSinkId" in HTMLMediaElement.prototype)) speaker.disabled = true;
  };

  /** @param {"audio" | "video"} kind @param {string} deviceId */
  const switchDevice = async (kind, deviceId) => {
    try {
      const fresh = await navigator.mediaDevices.getUserMedia({ [kind]: { deviceId: { exact: deviceId } } });
      const track = fresh.getTracks()[0];
      const old = client.localStream?.getTracks().find((t) => t.kind === kind);
      if (old) track.enabled = old.enabled;
      const others = client.localStream?.getTracks().filter((t) => t.kind !== kind) ?? [];
      const stream = new MediaStream([...others, track]);
      // replaceTrack inside: the calls go on without renegotiation.
      client.setLocalStream(stream);
      old?.stop();
      local.video.srcObject = stream;
      local.figure.classList.remove("no-media");
      localStorage.setItem(kind === "video" ? "rtcroom.camera" : "rtcroom.microphone", deviceId);
    } catch (err) {
      showNotice(`Could not switch to that device: ${describe(err)}`);
    }
  };

  button("open-settings").addEventListener("click", async () => {
    await fill().catch(() => {});
    dialog.showModal();
  });
  camera.addEventListener("change", () => switchDevice("video", camera.value));
  microphone.addEventListener("change", () => switchDevice("audio", microphone.value));
  speaker.addEventListener("change", () => {
    speakerId = speaker.value;
    localStorage.setItem("rtcroom.speaker", speakerId);
    for (const video of grid.querySelectorAll("video:not([data-local])")) {
      /** @type {any} */ (video).setSinkId?.(speakerId).catch(() => {});
    }
  });
}

main();
