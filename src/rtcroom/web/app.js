// The call page: UI on top of the client library in rtcroom.js.
import { ROOM_PATTERN, RoomClient, RoomError } from "./rtcroom.js";

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

const grid = $("grid");
const statusLine = $("status");
const notice = $("notice");

/** Plain-words messages for the error codes a user can meet. */
const MESSAGES = {
  "room-full": "This room is full. Try another room or come back later.",
  unreachable: "The rtcroom server cannot be reached. Check your connection and reload the page.",
  closed: "The connection to the server was lost. Reload the page to rejoin.",
  "bad-message": "The server did not accept the request.",
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
  return String(err);
}

/**
 * A video tile: a <figure> with a <video> and the participant's name.
 * @param {{name: string, peerId?: string, local?: boolean}} options
 */
function addTile({ name, peerId, local = false }) {
  const figure = document.createElement("figure");
  figure.className = local ? "tile local" : "tile";
  const video = document.createElement("video");
  video.autoplay = true;
  video.playsInline = true;
  if (local) {
    video.muted = true;
    video.dataset.local = "true";
  } else if (peerId) {
    video.dataset.peerId = peerId;
    figure.dataset.peerId = peerId;
  }
  const label = document.createElement("figcaption");
  label.textContent = local ? `${name} (you)` : name;
  figure.append(video, label);
  grid.append(figure);
  layout();
  return { figure, video, label };
}

/** Pick a column count that keeps tiles large for the number of participants. */
function layout() {
  const count = grid.children.length;
  grid.dataset.count = String(count);
  grid.style.setProperty("--columns", String(count <= 1 ? 1 : count <= 4 ? 2 : 3));
}

/**
 * Play a video; if the browser blocks sound without a user gesture, play it
 * muted and offer a button to turn sound on.
 * @param {HTMLVideoElement} video
 */
function play(video) {
  video.play().catch(() => {
    video.muted = true;
    video.play().catch(() => {});
    showNotice("Your browser blocked sound. Click anywhere to hear the others.", "info");
    document.addEventListener(
      "click",
      () => {
        for (const v of grid.querySelectorAll("video[data-peer-id]")) {
          /** @type {HTMLVideoElement} */ (v).muted = false;
        }
        notice.hidden = true;
      },
      { once: true },
    );
  });
}

/** Ask for camera and microphone; fall back to one of them, then to none. */
async function openLocalMedia() {
  /** @type {Promise<MediaStream> | undefined} started by room.html before the modules load */
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
 * @param {HTMLElement} button
 * @param {boolean} pressed
 * @param {string} on
 * @param {string} off
 */
function setToggle(button, pressed, on, off) {
  button.setAttribute("aria-pressed", String(pressed));
  button.textContent = pressed ? on : off;
}

async function main() {
  const room = decodeURIComponent(location.pathname.replace(/^\/r\//, "").replace(/\/$/, ""));
  $("room-name").textContent = room;
  document.title = `${room} · rtcroom`;
  if (!ROOM_PATTERN.test(room)) {
    statusLine.textContent = "Invalid room";
    showNotice("This room name is not valid: use letters, digits, - and _ (at most 64).");
    return;
  }
  const params = new URLSearchParams(location.search);
  let name = (params.get("name") ?? "").trim().slice(0, 64);
  if (!name) name = await askName(room);
  localStorage.setItem("rtcroom.name", name);

  const invite = `${location.origin}/r/${encodeURIComponent(room)}`;
  $("copy-link").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(invite);
      statusLine.textContent = "Invite link copied";
    } catch {
      window.prompt("Copy this link and send it:", invite);
    }
  });

  const local = addTile({ name, local: true });
  /** @type {Map<string, ReturnType<typeof addTile>>} */
  const tiles = new Map();

  // Join while the camera starts: the tracks slot into the calls when ready.
  const media = openLocalMedia();
  const client = new RoomClient({
    room,
    name,
    localStream: media.then((m) => m.stream),
    socket: /** @type {any} */ (window).rtcroomEarlySocket ?? null,
  });
  // Exposed for debugging in the console and for tests.
  Object.assign(window, { rtcroom: client });

  client.addEventListener("peerjoined", (event) => {
    const { peer } = /** @type {CustomEvent} */ (event).detail;
    const tile = addTile({ name: peer.name || "Guest", peerId: peer.id });
    tiles.set(peer.id, tile);
    updateStatus();
  });
  client.addEventListener("track", (event) => {
    const { peer } = /** @type {CustomEvent} */ (event).detail;
    const tile = tiles.get(peer.id);
    if (!tile) return;
    // Attach the stream once it has a track: a <video> given an empty stream
    // starts rendering later than one given a stream with its track.
    if (tile.video.srcObject !== peer.stream) tile.video.srcObject = peer.stream;
    play(tile.video);
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
    layout();
    updateStatus();
  });
  client.addEventListener("error", (event) => {
    showNotice(describe(/** @type {CustomEvent} */ (event).detail.error));
  });
  client.addEventListener("close", (event) => {
    const { error } = /** @type {CustomEvent} */ (event).detail;
    if (error) {
      statusLine.textContent = "Disconnected";
      showNotice(describe(error));
    }
  });

  function updateStatus() {
    if (!document.body.dataset.joined) return;
    const others = client.peers.size;
    statusLine.textContent = others === 0 ? "Waiting for others…" : `${others + 1} in the call`;
  }

  const joining = client.join().then(
    () => {
      document.body.dataset.joined = "true";
      updateStatus();
    },
    (err) => {
      statusLine.textContent = "Not connected";
      showNotice(describe(err));
    },
  );

  const { stream, error: mediaError } = await media;
  if (stream) {
    local.video.srcObject = stream;
    play(local.video);
  } else {
    local.figure.classList.add("no-media");
    const denied = mediaError instanceof DOMException && mediaError.name === "NotAllowedError";
    showNotice(
      denied
        ? "Camera and microphone access was refused: you joined receive-only. Others cannot see or hear you."
        : "No camera or microphone was found: you joined receive-only. Others cannot see or hear you.",
      "info",
    );
  }
  const micButton = $("toggle-mic");
  const camButton = $("toggle-camera");
  const audioTrack = stream?.getAudioTracks()[0];
  const videoTrack = stream?.getVideoTracks()[0];
  /** @type {HTMLButtonElement} */ (micButton).disabled = !audioTrack;
  /** @type {HTMLButtonElement} */ (camButton).disabled = !videoTrack;
  micButton.addEventListener("click", () => {
    if (!audioTrack) return;
    audioTrack.enabled = !audioTrack.enabled;
    setToggle(micButton, !audioTrack.enabled, "Unmute", "Mute");
  });
  camButton.addEventListener("click", () => {
    if (!videoTrack) return;
    videoTrack.enabled = !videoTrack.enabled;
    setToggle(camButton, !videoTrack.enabled, "Camera on", "Camera off");
    local.figure.classList.toggle("camera-off", !videoTrack.enabled);
  });

  $("leave").addEventListener("click", () => {
    client.leave();
    for (const track of stream?.getTracks() ?? []) track.stop();
    location.assign("/");
  });
  window.addEventListener("pagehide", () => client.leave());
  document.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLInputElement) return;
    if (event.key === "m") micButton.click();
    if (event.key === "v") camButton.click();
  });
  await joining;
}

main();
